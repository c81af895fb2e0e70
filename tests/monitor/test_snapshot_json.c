/* SPDX-License-Identifier: MIT */
/*
 * tests/monitor/test_snapshot_json.c - the snapshot read back from its JSON,
 * as `vram status` reads vramd's: the same document again, and malformed
 * or hostile text refused with a reason.
 */
#include "test.h"
#include "monitor/monitor.h"

static vram_ctx *open_sim(const char *spec)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", "sim", NULL);
    vram_options_set(o, "sim", spec, NULL);
    vram_ctx *ctx = NULL;
    vram_ctx_open(&ctx, o);
    vram_options_free(o);
    return ctx;
}

TEST(a_snapshot_survives_its_json)
{
    vram_ctx *ctx = open_sim("T4:14.7GiB:8.5GiB,RTX 4090:24GiB");
    CHECK(ctx);
    vram_snapshot *s, *back;
    CHECK_OK(vram_snapshot_take(ctx, "/", &s));
    s->from_daemon = 1;
    char *json, *again;
    CHECK_OK(vram_snapshot_to_json(s, &json));
    CHECK_OK(vram__snapshot_from_json(json, strlen(json), &back));
    CHECK_EQ(back->ndevices, 2);
    CHECK(back->from_daemon);
    CHECK_STR_EQ(back->backend, "sim");
    CHECK_EQ_U64(back->devices[0].others_bytes, s->devices[0].others_bytes);
    CHECK_EQ_U64(back->devices[1].safe_available_bytes, s->devices[1].safe_available_bytes);
    CHECK_STR_EQ(back->devices[1].info.name, "RTX 4090");
    CHECK_OK(vram_snapshot_to_json(back, &again));
    CHECK_STR_EQ(again, json);
    vram_free(json);
    vram_free(again);
    vram_snapshot_free(back);
    vram_snapshot_free(s);
    CHECK_OK(vram_ctx_close(ctx));
}

TEST(malformed_status_is_refused)
{
    static const char *bad[] = {
        "",
        "[]",
        "{\"devices\": 3}",
        "{\"devices\": [{\"index\": 0}]}",
        "{\"devices\": [{\"index\": 0, \"total_bytes\": -1}]}",
        "{\"devices\": [{\"index\": 0, \"total_bytes\": 1, \"used_bytes\": 1, \"free_bytes\": 0,"
        " \"leased_bytes\": 0, \"others_bytes\": 1, \"margin_bytes\": 0,"
        " \"safe_available_bytes\": 0, \"processes\": [{\"name\": \"x\"}]}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vram_snapshot *s = (vram_snapshot *)1;
        int rc = vram__snapshot_from_json(bad[i], strlen(bad[i]), &s);
        CHECK_MSG(rc == VRAM_EPARSE, "case %zu: %s (%s)", i, vram_errname(rc), vram_last_error());
        CHECK(s == NULL);
    }
    /* More devices than any machine has is refused before anything is made. */
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_puts(&b, "{\"devices\": [");
    for (int i = 0; i < VRAM_MAX_DEVICES + 1; i++)
        vram__buf_printf(&b, "%s{\"index\": %d, \"error\": \"VRAM_EDRIVER\"}", i ? "," : "", i);
    vram__buf_puts(&b, "]}");
    vram_snapshot *s;
    CHECK_ERR(vram__snapshot_from_json(b.data, b.len, &s), VRAM_EPARSE);
    CHECK_CONTAINS(vram_last_error(), "at most 64");
    vram__buf_free(&b);
}

TEST(a_device_error_and_hidden_processes_come_back)
{
    const char *text = "{\"backend\": \"nvml\", \"devices\": [{\"index\": 0, \"error\": \"VRAM_EDRIVER\","
                       " \"error_text\": \"lost\"}, {\"index\": 1, \"total_bytes\": 8, \"used_bytes\": 4,"
                       " \"free_bytes\": 4, \"leased_bytes\": 2, \"others_bytes\": 2, \"margin_bytes\": 1,"
                       " \"safe_available_bytes\": 1, \"processes\": null}]}";
    vram_snapshot *s;
    CHECK_OK(vram__snapshot_from_json(text, strlen(text), &s));
    CHECK_EQ(s->devices[0].error, VRAM_EDRIVER);
    CHECK_STR_EQ(s->devices[0].error_text, "lost");
    CHECK_EQ(s->devices[1].procs_status, VRAM_ENOTSUP);
    CHECK_EQ_U64(s->devices[1].leased_bytes, 2);
    CHECK(!s->from_daemon);
    vram_snapshot_free(s);
}
