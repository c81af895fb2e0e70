/* SPDX-License-Identifier: MIT */
/*
 * tests/monitor/test_snapshot.c - safe available, ours vs. others, the host,
 * process trees, and the JSON every script reads.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "monitor/monitor.h"

#define GiB (1024ull * 1024 * 1024)

static vram_ctx *open_with(const char *spec, const char *margin, const char *state)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "sim", NULL);
    vram_options_set(o, "sim", spec, NULL);
    if (margin)
        vram_options_set(o, "margin", margin, NULL);
    if (state)
        vram_options_set(o, "sim-state", state, NULL);
    vram_ctx *ctx = NULL;
    vram_ctx_open(&ctx, o);
    vram_options_free(o);
    return ctx;
}

TEST(sadtalker_card_safe_available)
{
    /* The write-up's T4: 14.7 GiB, 8.5 GiB used by others, 6.2 GiB free.
     * With the default 10% margin, 4.73 GiB is safe: three 1.5 GiB frames. */
    vram_ctx *ctx = open_with("T4:14.7GiB:8.5GiB", NULL, NULL);
    CHECK(ctx);
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, "/", &s));
    const vram_device_snapshot *d = &s->devices[0];
    uint64_t total;
    vram_size_parse("14.7GiB", &total);
    CHECK_EQ_U64(d->margin_bytes, total / 10);
    CHECK_EQ_U64(d->safe_available_bytes, total - 17 * GiB / 2 - total / 10);
    CHECK_EQ(d->safe_available_bytes / (3 * GiB / 2), 3);
    CHECK_EQ_U64(d->others_bytes, 17 * GiB / 2);
    CHECK_EQ_U64(d->leased_bytes, 0);
    CHECK(s->simulated);
    CHECK_STR_EQ(s->backend, "sim");
    CHECK(s->host.ram_total_bytes > 0 && s->host.cpu_count > 0);
    CHECK(s->host.disk_total_bytes > 0);
    CHECK_STR_EQ(s->host.disk_path, "/");
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(margins_in_bytes_and_percent)
{
    vram_ctx *ctx = open_with("G:10GiB:9GiB", "2GiB", NULL);
    CHECK(ctx);
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    CHECK_EQ_U64(s->devices[0].safe_available_bytes, 0);   /* never negative */
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
    ctx = open_with("G:10GiB:1GiB", "0%", NULL);
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    CHECK_EQ_U64(s->devices[0].safe_available_bytes, 9 * GiB);
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(json_has_bytes_as_integers_and_every_field)
{
    vram_ctx *ctx = open_with("T4 \"quoted\":14.7GiB:8.5GiB", NULL, NULL);
    CHECK(ctx);
    vram_snapshot *s;
    CHECK_OK(vram_snapshot_take(ctx, NULL, &s));
    char *json;
    CHECK_OK(vram_snapshot_to_json(s, &json));
    CHECK_CONTAINS(json, "\"name\":\"T4 \\\"quoted\\\"\"");
    CHECK_CONTAINS(json, "\"used_bytes\":9126805504");
    CHECK_CONTAINS(json, "\"safe_available_bytes\":");
    CHECK_CONTAINS(json, "\"simulated\":true");
    CHECK_CONTAINS(json, "\"ram_total_bytes\":");
    CHECK_CONTAINS(json, "\"disk_free_bytes\":");
    CHECK_CONTAINS(json, "\"processes\":[]");
    vram_free(json);
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(process_tree_usage_follows_grandchildren)
{
    char dir[] = "/tmp/vram-tree-XXXXXX";
    CHECK(mkdtemp(dir));
    vram_ctx *ctx = open_with("G:24GiB", NULL, dir);
    CHECK(ctx);
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    pid_t child = fork();
    if (child == 0) {
        /* The child allocates 1 GiB and forks a grandchild that takes 2 GiB. */
        vram_ctx *c = open_with("G:24GiB", NULL, dir);
        vram_sim_set_usage(c, 0, 1 * GiB);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            vram_ctx *g = open_with("G:24GiB", NULL, dir);
            vram_sim_set_usage(g, 0, 2 * GiB);
            char b = 'y';
            if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
                _exit(2);
            _exit(0);
        }
        waitpid(grandchild, NULL, 0);
        _exit(0);
    }
    char b;
    CHECK(read(ready[0], &b, 1) == 1);
    uint64_t bytes;
    CHECK_OK(vram_process_tree_usage(ctx, (uint32_t)child, &bytes));
    CHECK_EQ_U64(bytes, 3 * GiB);
    CHECK_OK(vram_process_tree_usage(ctx, (uint32_t)getpid(), &bytes));
    CHECK_EQ_U64(bytes, 3 * GiB);
    CHECK(write(go[1], "x", 1) == 1);
    waitpid(child, NULL, 0);
    CHECK_OK(vram_process_tree_usage(ctx, (uint32_t)getpid(), &bytes));
    CHECK_EQ_U64(bytes, 0);
    CHECK_ERR(vram_process_tree_usage(ctx, 0, &bytes), VRAM_EINVAL);
    CHECK_OK(vram_ctx_close(ctx));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(process_groups_usage_counts_each_group_in_one_pass)
{
    /* Two children, each the leader of a group of its own, hold 1 and 2 GiB;
     * a third group holds nothing; this process's 4 GiB is in none of them. */
    char dir[] = "/tmp/vram-groups-XXXXXX";
    CHECK(mkdtemp(dir));
    vram_ctx *ctx = open_with("G:24GiB,G2:24GiB", NULL, dir);
    CHECK(ctx);
    CHECK_OK(vram_sim_set_usage(ctx, 0, 4 * GiB));
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            setpgid(0, 0);
            vram_ctx *c = open_with("G:24GiB,G2:24GiB", NULL, dir);
            if (k < 2)
                vram_sim_set_usage(c, (unsigned)k, (uint64_t)(k + 1) * GiB);   /* on device k */
            char b = 'y';
            if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
                _exit(2);
            _exit(0);
        }
        setpgid(kids[k], kids[k]);
    }
    char b;
    for (int k = 0; k < 3; k++)
        CHECK(read(ready[0], &b, 1) == 1);
    uint32_t pgids[3] = { (uint32_t)kids[0], (uint32_t)kids[1], (uint32_t)kids[2] };
    uint64_t used[3] = { 9, 9, 9 };
    CHECK_OK(vram__process_groups_usage(ctx, pgids, 3, used));
    CHECK_EQ_U64(used[0], 1 * GiB);
    CHECK_EQ_U64(used[1], 2 * GiB);
    CHECK_EQ_U64(used[2], 0);
    uint64_t one;
    CHECK_OK(vram_process_group_usage(ctx, pgids[1], &one));
    CHECK_EQ_U64(one, 2 * GiB);
    CHECK(write(go[1], "xxx", 3) == 3);
    for (int k = 0; k < 3; k++)
        waitpid(kids[k], NULL, 0);
    CHECK_ERR(vram_process_group_usage(ctx, 0, &one), VRAM_EINVAL);
    CHECK_OK(vram_ctx_close(ctx));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}
