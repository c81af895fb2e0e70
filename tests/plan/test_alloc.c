/* SPDX-License-Identifier: MIT */
/*
 * tests/plan/test_alloc.c - PYTORCH_CUDA_ALLOC_CONF holds only what the
 * job's PyTorch accepts and acts on, and the probe finds that PyTorch.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

static const char *conf(uint64_t budget, uint64_t total, const char *torch)
{
    static char buf[256];
    int rc = vram_alloc_conf(budget, total, 0, torch, buf, sizeof(buf));
    return rc ? "ERROR" : buf;
}

TEST(old_pytorch_never_sees_expandable_segments)
{
    /* SadTalker's documented torch 1.12: expandable_segments would kill it
     * at its first allocation ("Unrecognized CachingAllocator option"). */
    CHECK_STR_EQ(conf(4 * GiB, 16 * GiB, "1.12.1+cu113"), "max_split_size_mb:64");
    CHECK_STR_EQ(conf(10 * GiB, 16 * GiB, "2.0.1"), "max_split_size_mb:128");
    CHECK_STR_EQ(conf(40 * GiB, 80 * GiB, "2.0"), "");
    CHECK_STR_EQ(conf(4 * GiB, 16 * GiB, "1.9.0"), "");  /* before the options */
}

TEST(recent_pytorch_gets_expandable_segments_alone_without_a_cap)
{
    /* max_split_size_mb is ignored with expandable segments, and
     * garbage_collection_threshold acts only under a memory fraction. */
    CHECK_STR_EQ(conf(4 * GiB, 16 * GiB, "2.1.0"), "expandable_segments:True");
    CHECK_STR_EQ(conf(4 * GiB, 16 * GiB, "2.8.0"), "expandable_segments:True");
    CHECK_STR_EQ(conf(4 * GiB, 16 * GiB, NULL), "expandable_segments:True");
    CHECK_STR_EQ(conf(4 * GiB, 16 * GiB, ""), "expandable_segments:True");
}

TEST(pytorch_2_9_caps_the_allocator_at_the_budget_less_the_context)
{
    /* (8 GiB - 512 MiB) / 80 GiB = 0.09375 -> 0.093, rounded down. */
    CHECK_STR_EQ(conf(8 * GiB, 80 * GiB, "2.9.0"),
                 "expandable_segments:True,per_process_memory_fraction:0.093,"
                 "garbage_collection_threshold:0.7");
    char buf[256];
    CHECK_OK(vram_alloc_conf(8 * GiB, 80 * GiB, 1 * GiB, "2.10", buf, sizeof(buf)));
    CHECK_CONTAINS(buf, "per_process_memory_fraction:0.087,");   /* 7/80 */
    /* No total known, or a budget of the whole card: no cap to give. */
    CHECK_STR_EQ(conf(8 * GiB, 0, "2.9"), "expandable_segments:True");
    CHECK_STR_EQ(conf(80 * GiB, 80 * GiB, "2.9"), "expandable_segments:True");
}

TEST(bad_input)
{
    char buf[8];
    CHECK_ERR(vram_alloc_conf(GiB, 0, 0, "two", buf, sizeof(buf)), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'two'");
    CHECK_ERR(vram_alloc_conf(GiB, 0, 0, "2.4", buf, sizeof(buf)), VRAM_ERANGE);
    CHECK_ERR(vram_alloc_conf(GiB, 0, 0, "2.4", NULL, 0), VRAM_EINVAL);
}

TEST(probe_reads_the_venv_of_the_python3_on_path)
{
    char dir[] = "/tmp/vram-alloc-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof(path), "%s/bin", dir);
    CHECK_EQ(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/bin/python3", dir);
    FILE *f = fopen(path, "w");
    CHECK(f);
    fclose(f);
    CHECK_EQ(chmod(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/lib", dir);
    CHECK_EQ(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/lib/python3.10", dir);
    CHECK_EQ(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/lib/python3.10/site-packages", dir);
    CHECK_EQ(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/lib/python3.10/site-packages/torch-1.12.1+cu113.dist-info", dir);
    CHECK_EQ(mkdir(path, 0755), 0);

    char oldpath[8192];
    snprintf(oldpath, sizeof(oldpath), "%s", getenv("PATH") ? getenv("PATH") : "");
    char newpath[8192 + 600];
    snprintf(newpath, sizeof(newpath), "%s/bin:%s", dir, oldpath);
    setenv("PATH", newpath, 1);
    unsetenv("VRAM_TORCH_VERSION");
    char v[32];
    CHECK_OK(vram_torch_version(v, sizeof(v)));
    CHECK_STR_EQ(v, "1.12.1+cu113");
    setenv("VRAM_TORCH_VERSION", "2.9.1", 1);
    CHECK_OK(vram_torch_version(v, sizeof(v)));
    CHECK_STR_EQ(v, "2.9.1");
    setenv("VRAM_TORCH_VERSION", "none", 1);
    CHECK_ERR(vram_torch_version(v, sizeof(v)), VRAM_ENOENT);
    setenv("VRAM_TORCH_VERSION", "latest", 1);
    CHECK_ERR(vram_torch_version(v, sizeof(v)), VRAM_EINVAL);
    unsetenv("VRAM_TORCH_VERSION");
    setenv("PATH", oldpath, 1);

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST(profile_torch_key_decides_the_plan)
{
    unsetenv("VRAM_TORCH_VERSION");
    vram_profile *p;
    CHECK_OK(vram_profile_load(NULL, "sadtalker", &p));
    vram_plan *plan;
    CHECK_OK(vram_plan_make(NULL, p, NULL, 0, 4 * GiB, 0, &plan));
    CHECK_STR_EQ(vram_plan_torch_version(plan), "1.12");
    CHECK_STR_EQ(vram_plan_alloc_conf(plan), "max_split_size_mb:64");
    vram_plan_free(plan);
    vram_profile_free(p);
}

TEST(accelerate_max_memory_leaves_the_activations_their_room)
{
    vram_profile *p;
    CHECK_OK(vram_profile_load(NULL, "hunyuanvideo-avatar", &p));
    vram_plan *plan;
    const char *set[] = { "audio=3" };
    CHECK_OK(vram_plan_make(NULL, p, set, 1, 10 * GiB, 0, &plan));
    vram_estimate e;
    CHECK_OK(vram_plan_estimate(plan, &e));
    char *json;
    CHECK_OK(vram_plan_format(plan, "json", &json));
    const char *at = strstr(json, "\"max_memory\":{\"0\":");
    CHECK(at);
    unsigned long long gpu = strtoull(at + strlen("\"max_memory\":{\"0\":"), NULL, 10);
    /* The budget less activations, context, slack and margin: not all of it. */
    uint64_t want = 10 * GiB - e.activation_bytes - e.overhead_bytes - e.margin_bytes;
    CHECK_MSG(gpu + 2 >= want && gpu <= want + 2, "%llu, wanted %llu", gpu, (unsigned long long)want);
    CHECK(gpu < 10 * GiB);
    vram_free(json);
    vram_plan_free(plan);
    vram_profile_free(p);
}

/* ---- host RAM ---- */

TEST(a_plan_whose_offload_needs_more_host_ram_than_there_is_does_not_fit)
{
    vram_profile *p;
    CHECK_OK(vram_profile_load(NULL, "wan2.2-t2v-a14b", &p));
    vram_plan *plan = NULL;
    /* Both experts and the text encoder wait in pinned host RAM while one
     * expert runs: 63.2 GiB, on a machine with 23.5 GiB. */
    setenv("VRAM_HOST_RAM", "23.5GiB", 1);
    CHECK_ERR(vram_plan_make(NULL, p, NULL, 0, 80 * GiB, 0, &plan), VRAM_ENOFIT);
    CHECK(!plan);
    CHECK_CONTAINS(vram_last_error(), "fits the 80.0 GiB budget on the GPU");
    CHECK_CONTAINS(vram_last_error(), "63.2 GiB of host RAM, over the 23.5 GiB");
    CHECK_CONTAINS(vram_last_error(), "what fits (vram optimize): precision=int8 (beefy");
    /* The optimizer holds the same limit: no offloading mode in its answer. */
    vram_optimization *opt = calloc(1, sizeof(*opt));
    CHECK_OK(vram_optimize(p, NULL, 0, 80 * GiB, VRAM_LEVEL_BALANCED, 0, opt));
    CHECK(opt->fits);
    CHECK_EQ(opt->after.memory, VRAM_MEMORY_BEEFY);
    setenv("VRAM_HOST_RAM", "64GiB", 1);
    CHECK_OK(vram_optimize(p, NULL, 0, 80 * GiB, VRAM_LEVEL_BALANCED, 0, opt));
    CHECK_EQ(opt->after.memory, VRAM_MEMORY_LIGHTWEIGHT);
    setenv("VRAM_HOST_RAM", "23.5GiB", 1);
    free(opt);
    const char *forced[] = { "tier=480p" };
    CHECK_ERR(vram_plan_make(NULL, p, forced, 1, 80 * GiB, 0, &plan), VRAM_ENOFIT);
    CHECK_CONTAINS(vram_last_error(), "tier '480p' (forced) fits");
    /* A GPU that holds everything needs no pinned copy: beefy fits. */
    CHECK_OK(vram_plan_make(NULL, p, NULL, 0, 120 * GiB, 0, &plan));
    CHECK_STR_EQ(vram_plan_param(plan, "memory"), "beefy");
    vram_plan_free(plan);
    /* With the RAM for it, the offloaded plan fits. */
    setenv("VRAM_HOST_RAM", "64GiB", 1);
    CHECK_OK(vram_plan_make(NULL, p, NULL, 0, 80 * GiB, 0, &plan));
    CHECK_STR_EQ(vram_plan_param(plan, "memory"), "lightweight");
    CHECK(vram_plan_fits(plan));
    vram_plan_free(plan);
    /* Without a context and without VRAM_HOST_RAM the host is not known. */
    unsetenv("VRAM_HOST_RAM");
    CHECK_OK(vram_plan_make(NULL, p, NULL, 0, 80 * GiB, 0, &plan));
    vram_plan_free(plan);
    setenv("VRAM_HOST_RAM", "lots", 1);
    CHECK_ERR(vram_plan_make(NULL, p, NULL, 0, 80 * GiB, 0, &plan), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "host-ram: 'lots'");
    unsetenv("VRAM_HOST_RAM");
    vram_profile_free(p);
}

TEST(a_context_checks_its_host_unless_told_off)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(vram_options_set(o, "backend", "sim", NULL));
    CHECK_OK(vram_options_set(o, "host-ram", "16GiB", NULL));
    vram_ctx *ctx;
    CHECK_OK(vram_ctx_open(&ctx, o));
    vram_profile *p;
    CHECK_OK(vram_profile_load(NULL, "wan2.2-ti2v-5b", &p));
    vram_plan *plan = NULL;
    const char *kv[] = { "tier=720p" };
    CHECK_ERR(vram_plan_make(ctx, p, kv, 1, 24 * GiB, 0, &plan), VRAM_ENOFIT);
    CHECK_CONTAINS(vram_last_error(), "over the 16.0 GiB");
    vram_ctx_close(ctx);
    CHECK_OK(vram_options_set(o, "host-ram", "off", NULL));
    CHECK_OK(vram_ctx_open(&ctx, o));
    CHECK_OK(vram_plan_make(ctx, p, kv, 1, 24 * GiB, 0, &plan));
    vram_plan_free(plan);
    vram_ctx_close(ctx);
    vram_options_free(o);
    vram_profile_free(p);
}
