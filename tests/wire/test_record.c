/* SPDX-License-Identifier: MIT */
/*
 * tests/wire/test_record.c - a daemon job's record, written as vramd writes
 * it into a claim reply and read back as its runner reads it; records that
 * are not what they should be are refused, never half read.
 */
#include "test.h"
#include "core/json_read.h"
#include "wire/record.h"

/* Writes row's record and reads it back. */
static int round_trip(const vram__job *row, vram__record *out)
{
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__record_write(&j, row);
    vram__json_doc *doc;
    char err[128];
    int rc = b.failed ? VRAM_ENOMEM : vram__json_read(b.data, b.len, 0, &doc, err, sizeof(err));
    vram__buf_free(&b);
    if (rc)
        return rc;
    rc = vram__record_read(vram__json_root(doc), out);
    vram__json_doc_free(doc);
    return rc;
}

static int read_text(const char *text, vram__record *out)
{
    vram__json_doc *doc;
    char err[128];
    int rc = vram__json_read(text, strlen(text), 0, &doc, err, sizeof(err));
    if (rc)
        return rc;
    rc = vram__record_read(vram__json_root(doc), out);
    vram__json_doc_free(doc);
    return rc;
}

TEST(a_record_crosses_whole)
{
    vram__job row;
    memset(&row, 0, sizeof(row));
    row.argv_json = "[\"python\",\"gen.py\",\"--steps\",\"{steps}\",\"a \\\"quoted\\\" word\"]";
    row.settings_json = "{\"steps\":\"30\",\"resolution\":\"512x512\"}";
    row.model = "latentsync";
    row.ladder = "batch=1; offload=cpu";
    row.name = "clip 7";
    snprintf(row.tier, sizeof(row.tier), "quality");
    row.vram_bytes = 0;
    row.device_pref = 1;
    vram__record r;
    CHECK_OK(round_trip(&row, &r));
    CHECK_STR_EQ(r.argv[0], "python");
    CHECK_STR_EQ(r.argv[3], "{steps}");
    CHECK_STR_EQ(r.argv[4], "a \"quoted\" word");
    CHECK(r.argv[5] == NULL);
    CHECK_EQ(r.nsettings, 2);
    CHECK_STR_EQ(r.settings[0], "steps=30");
    CHECK_STR_EQ(r.settings[1], "resolution=512x512");
    CHECK_STR_EQ(r.model, "latentsync");
    CHECK_STR_EQ(r.ladder, "batch=1; offload=cpu");
    CHECK_STR_EQ(r.name, "clip 7");
    CHECK_STR_EQ(r.tier, "quality");
    CHECK_EQ(r.device_pref, 1);
    vram__record_free(&r);
    CHECK(r.argv == NULL && r.settings == NULL && r.model == NULL);
}

TEST(a_record_without_settings_or_model)
{
    vram__job row;
    memset(&row, 0, sizeof(row));
    row.argv_json = "[\"true\"]";
    row.vram_bytes = 3ull << 30;
    row.device_pref = -1;
    vram__record r;
    CHECK_OK(round_trip(&row, &r));
    CHECK_STR_EQ(r.argv[0], "true");
    CHECK_EQ(r.nsettings, 0);
    CHECK_STR_EQ(r.model, "");
    CHECK_STR_EQ(r.ladder, "");
    CHECK_EQ_U64(r.vram_bytes, 3ull << 30);
    CHECK_EQ(r.device_pref, -1);
    vram__record_free(&r);
}

TEST(bad_records_are_refused)
{
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"argv\":[]}",
        "{\"argv\":\"true\"}",
        "{\"argv\":[\"true\",5]}",
        "{\"argv\":[\"true\"],\"settings\":[\"a=1\"]}",
        "{\"argv\":[\"true\"],\"settings\":{\"a\":1}}",
        "{\"argv\":[\"true\"],\"model\":7}",
        "{\"argv\":[\"true\"],\"vram\":-1}",
        "{\"argv\":[\"true\"],\"vram\":\"1GiB\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vram__record r;
        memset(&r, 0x5a, sizeof(r));
        CHECK_MSG(read_text(bad[i], &r) == VRAM_EPARSE, "accepted %s", bad[i]);
        CHECK_MSG(r.argv == NULL && r.settings == NULL && r.model == NULL, "half read %s", bad[i]);
    }
    vram__record r;
    CHECK_ERR(vram__record_read(NULL, &r), VRAM_EPARSE);
}
