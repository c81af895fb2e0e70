/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_dashboard.c - the device half of the provider: the
 * status document with its chart history, and the device metrics, from a
 * simulated context whose ledger the test scripts.  The monitor samples on
 * a thread of its own: the ThreadSanitizer run takes it.
 */
#define TEST_THREADED 1
#include <unistd.h>

#include "core/ctx.h"
#include "core/json_read.h"
#include "daemon/http.h"
#include "test.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* A stand-in ledger: device 0 holds `leased` bytes, all in use. */
typedef struct ledger {
    uint64_t leased;
} ledger;

static int ledger_view(void *l, unsigned device, vram__lease_view *out)
{
    const ledger *g = l;
    out->leased_bytes = device == 0 ? __atomic_load_n(&g->leased, __ATOMIC_RELAXED) : 0;
    out->unused_bytes = 0;
    return 0;
}

static vram_ctx *open_sim(ledger *g)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "sim", NULL);
    vram_options_set(o, "sim", "A:8GiB:1GiB,B \"x\":16GiB:2GiB", NULL);
    vram_ctx *ctx = NULL;
    vram_ctx_open(&ctx, o);
    vram_options_free(o);
    if (ctx && g) {
        ctx->lease_view = ledger_view;
        __atomic_store_n(&ctx->ledger, g, __ATOMIC_RELEASE);
    }
    return ctx;
}

static void close_sim(vram_ctx *ctx)
{
    __atomic_store_n(&ctx->ledger, NULL, __ATOMIC_RELEASE);
    vram_ctx_close(ctx);
}

/* The last number of series `key` of device d's history, or UINT64_MAX. */
static uint64_t last_of(const vram__jv *root, unsigned d, const char *key, size_t *n)
{
    const vram__jv *hist = vram__jv_get(root, "history");
    if (!hist || hist->kind != VRAM__JV_ARRAY || d >= hist->n)
        return UINT64_MAX;
    const vram__jv *s = vram__jv_get(hist->items[d], key);
    uint64_t v;
    if (!s || s->kind != VRAM__JV_ARRAY || s->n == 0 || !vram__jv_uint(s->items[s->n - 1], &v))
        return UINT64_MAX;
    *n = s->n;
    return v;
}

TEST(status_has_the_snapshot_and_each_devices_history)
{
    ledger g = { 512 * MiB };
    vram_ctx *ctx = open_sim(&g);
    CHECK(ctx != NULL);
    vram_monitor *mon;
    CHECK_OK(vram_monitor_start(ctx, 3600 * 1000, 1000, &mon));
    for (int i = 0; i < 5; i++)
        CHECK_OK(vram_monitor_sample_now(mon));
    char *json;
    CHECK_OK(vram__dashboard_status_json(ctx, mon, 0, 0, &json));
    char err[256];
    vram__json_doc *doc;
    CHECK_OK(vram__json_read(json, strlen(json), 0, &doc, err, sizeof(err)));
    const vram__jv *root = vram__json_root(doc);
    const vram__jv *snap = vram__jv_get(root, "snapshot");
    CHECK(snap && vram__jv_get(snap, "simulated")->b);
    CHECK_EQ(vram__jv_get(snap, "devices")->n, 2);
    CHECK_STR_EQ(vram__jv_str(vram__jv_get(vram__jv_get(snap, "devices")->items[1], "name")),
                 "B \"x\"");
    CHECK_EQ(vram__jv_get(root, "history")->n, 2);
    size_t n0 = 0, n1 = 0, n2 = 0, n3 = 0;
    CHECK_EQ_U64(last_of(root, 0, "leased_bytes", &n0), 512 * MiB);
    CHECK_EQ_U64(last_of(root, 0, "others_bytes", &n1), 512 * MiB);
    CHECK_EQ_U64(last_of(root, 0, "free_bytes", &n2), 7 * GiB);
    CHECK_EQ_U64(last_of(root, 0, "age_ms", &n3), 0);
    CHECK(n0 >= 1 && n0 == n1 && n1 == n2 && n2 == n3);
    CHECK_EQ_U64(last_of(root, 1, "leased_bytes", &n0), 0);
    CHECK_EQ_U64(last_of(root, 1, "others_bytes", &n0), 2 * GiB);
    CHECK_EQ_U64(last_of(root, 1, "free_bytes", &n0), 14 * GiB);
    CHECK_EQ_U64(vram__jv_get(vram__jv_get(root, "history")->items[0], "window_ms")->num,
                 300000);
    vram__json_doc_free(doc);
    free(json);
    vram_monitor_stop(mon);
    close_sim(ctx);
}

TEST(history_is_bucketed_keeping_peaks)
{
    ledger g = { 0 };
    vram_ctx *ctx = open_sim(&g);
    CHECK(ctx != NULL);
    vram_monitor *mon;
    CHECK_OK(vram_monitor_start(ctx, 3600 * 1000, 1000, &mon));
    for (int i = 1; i <= 30; i++) {
        __atomic_store_n(&g.leased, (uint64_t)(i % 7) * GiB, __ATOMIC_RELAXED);
        CHECK_OK(vram_monitor_sample_now(mon));
        usleep(2000);
    }
    char *json;
    CHECK_OK(vram__dashboard_status_json(ctx, mon, 60000, 4, &json));
    char err[256];
    vram__json_doc *doc;
    CHECK_OK(vram__json_read(json, strlen(json), 0, &doc, err, sizeof(err)));
    /* 30 samples inside one 15-second bucket: one point, holding the peak. */
    size_t n = 0;
    CHECK_EQ_U64(last_of(vram__json_root(doc), 0, "leased_bytes", &n), 6 * GiB);
    CHECK_EQ(n, 1);
    CHECK_EQ_U64(last_of(vram__json_root(doc), 0, "others_bytes", &n), 0);
    CHECK_EQ_U64(last_of(vram__json_root(doc), 0, "free_bytes", &n), 2 * GiB);
    vram__json_doc_free(doc);
    free(json);
    vram_monitor_stop(mon);
    close_sim(ctx);
}

TEST(status_without_a_monitor_has_empty_history)
{
    vram_ctx *ctx = open_sim(NULL);
    CHECK(ctx != NULL);
    char *json;
    CHECK_OK(vram__dashboard_status_json(ctx, NULL, 0, 0, &json));
    CHECK_CONTAINS(json, "\"history\":[{\"index\":0,\"window_ms\":300000,\"age_ms\":[],"
                         "\"leased_bytes\":[],\"others_bytes\":[],\"free_bytes\":[]},");
    free(json);
    CHECK_ERR(vram__dashboard_status_json(NULL, NULL, 0, 0, &json), VRAM_EINVAL);
    vram_ctx_close(ctx);
}

TEST(metrics_devices_come_from_one_snapshot)
{
    ledger g = { 3 * GiB };
    vram_ctx *ctx = open_sim(&g);
    CHECK(ctx != NULL);
    vram__metrics *m = calloc(1, sizeof(*m));
    CHECK_OK(vram__dashboard_metrics_devices(ctx, m));
    CHECK_EQ(m->simulated, 1);
    CHECK_EQ(m->ndevices, 2);
    CHECK_STR_EQ(m->devices[1].name, "B \"x\"");
    CHECK_EQ_U64(m->devices[0].total_bytes, 8 * GiB);
    CHECK_EQ_U64(m->devices[0].used_bytes, 1 * GiB);
    CHECK_EQ_U64(m->devices[0].leased_bytes, 3 * GiB);
    CHECK_EQ_U64(m->devices[0].others_bytes, 0);
    CHECK_EQ_U64(m->devices[1].others_bytes, 2 * GiB);
    CHECK_EQ_U64(m->devices[1].safe_available_bytes, 14 * GiB - (16 * GiB) / 10);
    free(m);
    close_sim(ctx);
}
