/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_json_read.c - the strict JSON reader.
 */
#include "test.h"
#include "core/json_read.h"

static int parse(const char *text, vram__json_doc **d, char *err)
{
    return vram__json_read(text, strlen(text), 0, d, err, 200);
}

TEST(reads_a_request)
{
    vram__json_doc *d;
    char err[200];
    CHECK_OK(parse(" {\"op\":\"submit\",\"bytes\":18446744073709551615,\"argv\":[\"python\",\"gen.py\"],"
                   "\"name\":\"caf\\u00e9 \\ud83c\\udfac \\\"q\\\"\",\"wait\":null,\"ok\":true,\"x\":-1.5e3} ", &d, err));
    const vram__jv *root = vram__json_root(d);
    CHECK_STR_EQ(vram__jv_str(vram__jv_get(root, "op")), "submit");
    uint64_t bytes;
    CHECK(vram__jv_uint(vram__jv_get(root, "bytes"), &bytes));
    CHECK_EQ_U64(bytes, UINT64_MAX);
    const vram__jv *argv = vram__jv_get(root, "argv");
    CHECK(argv && argv->kind == VRAM__JV_ARRAY && argv->n == 2);
    CHECK_STR_EQ(vram__jv_str(argv->items[1]), "gen.py");
    CHECK_STR_EQ(vram__jv_str(vram__jv_get(root, "name")), "café 🎬 \"q\"");
    CHECK_EQ(vram__jv_get(root, "wait")->kind, VRAM__JV_NULL);
    CHECK(vram__jv_get(root, "ok")->b);
    CHECK_NEAR(vram__jv_get(root, "x")->num, -1500, 1e-9);
    CHECK(!vram__jv_uint(vram__jv_get(root, "x"), &bytes));
    CHECK(vram__jv_get(root, "missing") == NULL);
    vram__json_doc_free(d);
}

TEST(refuses_what_is_not_json_and_says_where)
{
    static const struct { const char *text, *says; } bad[] = {
        { "", "unexpected end" },
        { "{", "expected a string as an object key" },
        { "{\"a\" 1}", "at byte 5: expected ':'" },
        { "{\"a\":1,}", "expected a string as an object key" },
        { "[1,2,]", "expected a value" },
        { "[1 2]", "expected ',' or ']'" },
        { "{\"a\":1,\"a\":2}", "twice" },
        { "01", "do not start with 0" },
        { "1.", "decimal point" },
        { "NaN", "expected a value" },
        { "\"\\x\"", "unknown escape" },
        { "\"\\ud800\"", "without its low half" },
        { "\"\\udc00\"", "lone low surrogate" },
        { "\"\\u0000\"", "\\u0000" },
        { "\"a\nb\"", "control character" },
        { "\"\xc3\x28\"", "invalid UTF-8" },
        { "\"\xed\xa0\x80\"", "invalid UTF-8" },
        { "\"unterminated", "unterminated string" },
        { "{} {}", "text after" },
        { "1e999", "out of range" },
        { "tru", "expected a value" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vram__json_doc *d = (vram__json_doc *)1;
        char err[200];
        CHECK_MSG(parse(bad[i].text, &d, err) == VRAM_EPARSE, "accepted: %s", bad[i].text);
        CHECK(d == NULL);
        CHECK_CONTAINS(err, bad[i].says);
    }
}

TEST(bounded_depth_and_size)
{
    char deep[200];
    memset(deep, '[', 40);
    memset(deep + 40, ']', 40);
    deep[80] = '\0';
    vram__json_doc *d;
    char err[200];
    CHECK_ERR(parse(deep, &d, err), VRAM_EPARSE);
    CHECK_CONTAINS(err, "nested too deeply");
    deep[30] = '\0';
    memset(deep, '[', 15);
    memset(deep + 15, ']', 15);
    CHECK_OK(parse(deep, &d, err));
    vram__json_doc_free(d);
    CHECK_ERR(vram__json_read("[1,2,3,4,5,6]", 13, 4, &d, err, sizeof(err)), VRAM_EPARSE);
    CHECK_CONTAINS(err, "too large");
    /* Not NUL-terminated: only len bytes count. */
    CHECK_OK(vram__json_read("[1]garbage", 3, 0, &d, err, sizeof(err)));
    vram__json_doc_free(d);
}

/* What the writer makes of any bytes (a file name, an argv word that is not
 * UTF-8, a control character) is JSON this reader takes, and reads back as
 * the text with U+FFFD for each byte that starts no character. */
TEST(written_strings_read_back)
{
    static const struct { const char *in, *back; } cases[] = {
        { "caf\xc3\xa9 \xf0\x9f\x8e\xac", "caf\xc3\xa9 \xf0\x9f\x8e\xac" },
        { "n\xffx", "n\xef\xbf\xbdx" },
        { "\xfe\xff", "\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xc3", "\xef\xbf\xbd" },                     /* cut short at the end */
        { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },   /* a surrogate's bytes */
        { "a\x1b[31m\"\\", "a\x1b[31m\"\\" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vram__buf b;
        vram__buf_init(&b);
        vram__json_escape(&b, cases[i].in);
        vram__json_doc *d;
        char err[200];
        CHECK_OK(vram__json_read(b.data, b.len, 0, &d, err, sizeof(err)));
        CHECK_STR_EQ(vram__jv_str(vram__json_root(d)), cases[i].back);
        vram__json_doc_free(d);
        vram__buf_free(&b);
    }
}
