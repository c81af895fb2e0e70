/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_size.c - the size, margin and duration grammars.
 */
#include "test.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

static uint64_t parsed(const char *text)
{
    uint64_t v = 0;
    if (vram_size_parse(text, &v) != 0)
        return UINT64_MAX;
    return v;
}

TEST(accepts_units)
{
    CHECK_EQ_U64(parsed("0"), 0);
    CHECK_EQ_U64(parsed("1048576"), 1048576);
    CHECK_EQ_U64(parsed("512M"), 512 * MiB);
    CHECK_EQ_U64(parsed("512MiB"), 512 * MiB);
    CHECK_EQ_U64(parsed("8GiB"), 8 * GiB);
    CHECK_EQ_U64(parsed("8gib"), 8 * GiB);
    CHECK_EQ_U64(parsed("8G"), 8 * GiB);
    CHECK_EQ_U64(parsed("1.5GB"), 1500000000ull);
    CHECK_EQ_U64(parsed("1.5 GiB"), 3 * GiB / 2);
    CHECK_EQ_U64(parsed(" 2T "), 2ull * 1024 * GiB);
    CHECK_EQ_U64(parsed("100B"), 100);
    CHECK_EQ_U64(parsed("4K"), 4096);
    CHECK_EQ_U64(parsed("4KB"), 4000);
    CHECK_EQ_U64(parsed(".5G"), GiB / 2);
    CHECK_EQ_U64(parsed("143771MiB"), 143771ull * MiB);
    CHECK_EQ_U64(parsed("1e3B"), 1000);
}

TEST(refuses_malformed_with_the_value_named)
{
    uint64_t v = 7;
    CHECK_ERR(vram_size_parse("12XB", &v), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "12XB");
    CHECK_CONTAINS(vram_last_error(), "unknown unit 'XB'");
    CHECK_EQ_U64(v, 0);
    CHECK_ERR(vram_size_parse("-3G", &v), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "negative");
    CHECK_ERR(vram_size_parse("1e30G", &v), VRAM_ERANGE);
    CHECK_CONTAINS(vram_last_error(), "too large");
    CHECK_ERR(vram_size_parse("", &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse("G", &v), VRAM_EINVAL);
    /* "--vram 12" is a forgotten unit, not 12 bytes. */
    CHECK_ERR(vram_size_parse("12", &v), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "'12' has no unit, so it would be 12 bytes: give a unit, e.g. 12GiB");
    CHECK_ERR(vram_size_parse("1e3", &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse("inf", &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse("nan", &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse("0x10", &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse("1.2.3G", &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse("8 GiB extra", &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse(NULL, &v), VRAM_EINVAL);
    CHECK_ERR(vram_size_parse("1G", NULL), VRAM_EINVAL);
}

TEST(overflow_edges)
{
    CHECK_EQ_U64(parsed("16383PiB") == UINT64_MAX, 1);      /* unknown unit PiB */
    CHECK_EQ_U64(parsed("18446744073709551615") == UINT64_MAX, 1); /* rounds to 2^64 in double */
    CHECK_EQ_U64(parsed("16777215T"), 16777215ull * 1024 * GiB);
    uint64_t v;
    CHECK_ERR(vram_size_parse("16777216T", &v), VRAM_ERANGE);
    CHECK_ERR(vram_size_parse("99999999999999999999", &v), VRAM_ERANGE);
}

TEST(format_round_trip)
{
    char buf[32];
    vram_size_format(0, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "0 B");
    vram_size_format(1023, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "1023 B");
    vram_size_format(1536 * MiB, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "1.5 GiB");
    vram_size_format(143771ull * MiB, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "140.4 GiB");
    vram_size_format(1024 * GiB - 1, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "1.0 TiB");
    vram_size_format(UINT64_MAX, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "16.0 EiB");
}

TEST(margins)
{
    double pct;
    uint64_t bytes;
    int is_pct;
    CHECK_OK(vram_margin_parse("10%", &pct, &bytes, &is_pct));
    CHECK(is_pct);
    CHECK_NEAR(pct, 10, 1e-9);
    CHECK_OK(vram_margin_parse("2.5 %", &pct, &bytes, &is_pct));
    CHECK_NEAR(pct, 2.5, 1e-9);
    CHECK_OK(vram_margin_parse("2GiB", &pct, &bytes, &is_pct));
    CHECK(!is_pct);
    CHECK_EQ_U64(bytes, 2 * GiB);
    CHECK_OK(vram_margin_parse("100%", &pct, &bytes, &is_pct));
    CHECK_ERR(vram_margin_parse("150%", &pct, &bytes, &is_pct), VRAM_ERANGE);
    CHECK_CONTAINS(vram_last_error(), "over 100%");
    CHECK_ERR(vram_margin_parse("-5%", &pct, &bytes, &is_pct), VRAM_EINVAL);
    CHECK_ERR(vram_margin_parse("ten%", &pct, &bytes, &is_pct), VRAM_EINVAL);
    CHECK_ERR(vram_margin_parse("2XB", &pct, &bytes, &is_pct), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "margin");
}

TEST(durations)
{
    uint64_t ms;
    CHECK_OK(vram_duration_parse("100ms", 1, &ms));
    CHECK_EQ_U64(ms, 100);
    CHECK_OK(vram_duration_parse("0.5s", 1, &ms));
    CHECK_EQ_U64(ms, 500);
    CHECK_OK(vram_duration_parse("2m", 1, &ms));
    CHECK_EQ_U64(ms, 120000);
    CHECK_OK(vram_duration_parse("250", 1, &ms));
    CHECK_EQ_U64(ms, 250);
    CHECK_OK(vram_duration_parse("3", 1000, &ms));
    CHECK_EQ_U64(ms, 3000);
    CHECK_ERR(vram_duration_parse("-1s", 1, &ms), VRAM_EINVAL);
    CHECK_ERR(vram_duration_parse("5 parsecs", 1, &ms), VRAM_EINVAL);
    CHECK_ERR(vram_duration_parse("1e12h", 1, &ms), VRAM_ERANGE);
}
