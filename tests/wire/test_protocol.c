/* SPDX-License-Identifier: MIT */
/*
 * tests/wire/test_protocol.c - the socket protocol's requests and replies.
 */
#include "test.h"
#include "wire/protocol.h"

#define GiB (1024ull * 1024 * 1024)

static int parse(const char *line, vram__request *r, char *err)
{
    return vram__request_parse(line, strlen(line), r, err, 300);
}

TEST(submit)
{
    vram__request r;
    char err[300];
    CHECK_OK(parse("{\"v\":1,\"id\":7,\"op\":\"submit\",\"argv\":[\"python\",\"gen.py\",\"--size\",\"{resolution}\"],"
                   "\"cwd\":\"/home/u\",\"env\":{\"PATH\":\"/usr/bin\",\"HOME\":\"/home/u\"},\"vram\":\"6GiB\","
                   "\"ladder\":\"batch=8; batch=1\",\"settings\":{\"resolution\":\"720p\",\"steps\":30},"
                   "\"device\":\"auto\",\"priority\":-5,\"name\":\"clip 3\"}", &r, err));
    CHECK_EQ(r.op, VRAM__OP_SUBMIT);
    CHECK_STR_EQ(r.id, "7");
    CHECK_EQ(r.argc, 4);
    CHECK_STR_EQ(r.argv[3], "{resolution}");
    CHECK(r.argv[4] == NULL);
    CHECK_EQ_U64(r.bytes, 6 * GiB);
    CHECK_EQ(r.device, -1);
    CHECK_EQ(r.priority, -5);
    CHECK(r.env && r.env->n == 2);
    CHECK(r.settings && r.settings->n == 2);
    CHECK_STR_EQ(r.ladder, "batch=8; batch=1");
    vram__request_free(&r);

    CHECK_OK(parse("{\"op\":\"submit\",\"argv\":[\"x\"],\"model\":\"latentsync\",\"id\":\"abc\"}", &r, err));
    CHECK_STR_EQ(r.id, "\"abc\"");
    CHECK_EQ_U64(r.bytes, 0);
    vram__request_free(&r);
}

TEST(other_operations)
{
    vram__request r;
    char err[300];
    CHECK_OK(parse("{\"op\":\"lease\",\"vram\":1073741824,\"device\":1,\"wait_ms\":500,\"holder\":\"py\"}", &r, err));
    CHECK_EQ(r.op, VRAM__OP_LEASE);
    CHECK_EQ_U64(r.bytes, GiB);
    CHECK_EQ(r.device, 1);
    CHECK_EQ_U64(r.wait_ms, 500);
    vram__request_free(&r);
    CHECK_OK(parse("{\"op\":\"list\",\"state\":\"queued\",\"limit\":10}", &r, err));
    CHECK_STR_EQ(r.state, "queued");
    vram__request_free(&r);
    CHECK_OK(parse("{\"op\":\"cancel\",\"job\":42}", &r, err));
    CHECK_EQ_U64(r.job, 42);
    vram__request_free(&r);
    CHECK_OK(parse("{\"op\":\"hello\"}", &r, err));
    vram__request_free(&r);
    CHECK_OK(parse("{\"op\":\"release\",\"lease\":3}", &r, err));
    CHECK_EQ_U64(r.lease, 3);
    vram__request_free(&r);
}

TEST(a_ladder_with_budgets_sizes_the_job)
{
    vram__request r;
    char err[300];
    CHECK_OK(parse("{\"op\":\"submit\",\"argv\":[\"x\"],\"ladder\":\"a=1 vram=3GiB; a=2 vram=2GiB\"}", &r, err));
    CHECK_EQ_U64(r.bytes, 3ull << 30);
    vram__request_free(&r);
    CHECK_OK(parse("{\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":\"3GiB\",\"ladder\":\"vram=3GiB; vram=2GiB\"}", &r, err));
    CHECK_EQ_U64(r.bytes, 3ull << 30);
    vram__request_free(&r);
}

/* Its {key}s have values: from its settings, its first rung, or the plan
 * of its model (checked when its runner plans). */
TEST(a_submit_names_keys_it_gives_values)
{
    vram__request r;
    char err[300];
    CHECK_OK(parse("{\"op\":\"submit\",\"argv\":[\"gen\",\"{a}\",\"{b}\",\"{{c}}\"],\"vram\":1,"
                   "\"settings\":{\"a\":\"1\"},\"ladder\":\"b=2; b=1\"}", &r, err));
    vram__request_free(&r);
    CHECK_OK(parse("{\"op\":\"submit\",\"argv\":[\"gen\",\"{steps}\",\"{args}\"],\"model\":\"sadtalker\"}", &r,
                   err));
    vram__request_free(&r);
}

TEST(bad_requests_are_named_and_keep_the_id)
{
    static const struct { const char *line, *says; } bad[] = {
        { "not json", "at byte 0" },
        { "[1,2]", "a request is a JSON object" },
        { "{\"id\":3}", "needs 'op'" },
        { "{\"id\":3,\"op\":\"explode\"}", "unknown op 'explode'" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":\"1G\",\"colour\":\"red\"}", "unknown field 'colour' in submit" },
        { "{\"id\":3,\"op\":\"list\",\"argv\":[\"x\"]}", "unknown field 'argv' in list" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[]}", "non-empty array" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"\"],\"vram\":1}", "empty command" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[1],\"vram\":1}", "'argv' must be a string" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"]}", "needs 'vram' (a size) or 'model'" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":\"12XB\"}", "'12XB' is not a size" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":-1}", "whole number of bytes" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":0}", "more than 0" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":1,\"cwd\":\"rel\"}", "absolute path" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":1,\"device\":99}", "\"auto\" or a device number" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":1,\"env\":{\"A=B\":\"c\"}}", "bad variable name" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":1,\"priority\":1000}", "from -100 to 100" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":1,\"ladder\":\"b=1;;\"}", "rung 2 is empty" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"x\"],\"vram\":\"1GiB\",\"ladder\":\"vram=3GiB; vram=2GiB\"}",
          "job's budget (1.0 GiB) and its ladder's first rung (vram=3.0 GiB) disagree" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"echo\",\"{steps}\"],\"vram\":1}",
          "'{steps}' in the command has no value (known: none" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"echo\",\"{fps}\"],\"vram\":1,\"settings\":{\"a\":\"1\"},"
          "\"ladder\":\"steps=2; fps=1\"}", "'{fps}' in the command has no value (known: {a}, {steps}" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"{args}\"],\"vram\":1}", "{args} in the command needs a model" },
        { "{\"id\":3,\"op\":\"submit\",\"argv\":[\"gen\",\"{bogus}\"],\"model\":\"sadtalker\"}",
          "'{bogus}' in the command has no value (known: {resolution}" },
        { "{\"id\":3,\"op\":\"cancel\"}", "needs 'job'" },
        { "{\"id\":3,\"op\":\"cancel\",\"job\":0}", "from 1 to" },
        { "{\"id\":3,\"op\":\"list\",\"state\":\"sleeping\"}", "not one of queued" },
        { "{\"id\":3,\"op\":\"hello\",\"v\":2}", "protocol version 2" },
        { "{\"id\":{},\"op\":\"hello\"}", "'id' must be a number or a string" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vram__request r;
        char err[300];
        int rc = parse(bad[i].line, &r, err);
        CHECK_MSG(rc == VRAM_EINVAL || rc == VRAM_EPARSE, "accepted: %s", bad[i].line);
        CHECK_CONTAINS(err, bad[i].says);
        CHECK(r.doc == NULL);
        if (strstr(bad[i].line, "\"id\":3"))
            CHECK_STR_EQ(r.id, "3");
    }
    char big[VRAM__PROTO_MAX_LINE + 100];
    memset(big, ' ', sizeof(big));
    vram__request r;
    char err[300];
    CHECK_ERR(vram__request_parse(big, sizeof(big), &r, err, sizeof(err)), VRAM_EINVAL);
    CHECK_CONTAINS(err, "over the limit");
}

TEST(replies)
{
    vram__request r;
    char err[300];
    CHECK_OK(parse("{\"op\":\"hello\",\"id\":\"q1\"}", &r, err));
    vram__buf b;
    vram__buf_init(&b);
    vram__json j;
    vram__reply_begin(&b, &r, &j);
    vram__json_key(&j, "job");
    vram__json_uint(&j, 5);
    vram__reply_end(&j);
    CHECK_STR_EQ(b.data, "{\"id\":\"q1\",\"ok\":true,\"job\":5}\n");
    vram__buf_free(&b);
    vram__reply_error(&b, "9", VRAM_EINVAL, "unknown field 'x' in \"submit\"");
    CHECK_STR_EQ(b.data, "{\"id\":9,\"ok\":false,\"error\":\"VRAM_EINVAL\",\"message\":\"unknown field 'x' in \\\"submit\\\"\"}\n");
    vram__buf_free(&b);
    vram__request_free(&r);
}
