/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_image.c - Lanczos resampling of 8-bit frames: exact at
 * the same size, flat stays flat, shrinking averages, enlarging keeps order,
 * channels convert, bad images are refused.
 */
#include "test.h"

static vram_image make(uint32_t w, uint32_t h, uint32_t c, uint8_t *data)
{
    return (vram_image){ w, h, c, w * c, data };
}

TEST(the_same_size_is_an_exact_copy)
{
    uint8_t px[5 * 4 * 3];
    for (size_t i = 0; i < sizeof(px); i++)
        px[i] = (uint8_t)(i * 37 + 11);
    vram_image src = make(5, 4, 3, px), dst;
    CHECK_OK(vram_image_resample(&src, 5, 4, 3, &dst));
    CHECK_EQ(dst.stride, 15);
    CHECK(memcmp(dst.data, px, sizeof(px)) == 0);
    vram_free(dst.data);
}

TEST(a_flat_frame_stays_flat_at_any_size)
{
    uint8_t px[7 * 5 * 4];
    memset(px, 90, sizeof(px));
    vram_image src = make(7, 5, 4, px), dst;
    uint32_t sizes[][2] = { { 3, 2 }, { 16, 9 }, { 1, 1 }, { 64, 3 } };
    for (size_t k = 0; k < 4; k++) {
        CHECK_OK(vram_image_resample(&src, sizes[k][0], sizes[k][1], 4, &dst));
        for (size_t i = 0; i < (size_t)sizes[k][0] * sizes[k][1] * 4; i++)
            CHECK_EQ(dst.data[i], 90);
        vram_free(dst.data);
    }
}

TEST(shrinking_averages_instead_of_skipping)
{
    /* A 1-pixel checkerboard halved: every output pixel near mid-gray, where
     * picking pixels would give pure black or white. */
    uint8_t px[32 * 32];
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            px[y * 32 + x] = (x + y) % 2 ? 255 : 0;
    vram_image src = make(32, 32, 1, px), dst;
    CHECK_OK(vram_image_resample(&src, 16, 16, 1, &dst));
    for (int y = 2; y < 14; y++)
        for (int x = 2; x < 14; x++)
            CHECK_MSG(dst.data[y * 16 + x] > 100 && dst.data[y * 16 + x] < 155,
                      "pixel %d,%d is %d", x, y, dst.data[y * 16 + x]);
    vram_free(dst.data);
}

TEST(enlarging_a_ramp_keeps_it_a_ramp)
{
    uint8_t px[8];
    for (int i = 0; i < 8; i++)
        px[i] = (uint8_t)(i * 32);
    vram_image src = make(8, 1, 1, px), dst;
    CHECK_OK(vram_image_resample(&src, 32, 1, 1, &dst));
    for (int i = 3; i < 29; i++)
        CHECK_MSG(dst.data[i] >= dst.data[i - 1], "not increasing at %d: %d < %d", i,
                  dst.data[i], dst.data[i - 1]);
    CHECK(dst.data[0] < 16 && dst.data[31] > 200);
    vram_free(dst.data);
}

TEST(channels_convert_gray_rgb_and_alpha)
{
    uint8_t rgb[3] = { 255, 0, 0 }, gray[1] = { 77 }, rgba[4] = { 10, 20, 30, 40 };
    vram_image src = make(1, 1, 3, rgb), dst;
    CHECK_OK(vram_image_resample(&src, 1, 1, 1, &dst));
    CHECK_EQ(dst.data[0], 76);      /* 0.299 * 255 */
    vram_free(dst.data);
    src = make(1, 1, 1, gray);
    CHECK_OK(vram_image_resample(&src, 1, 1, 4, &dst));
    CHECK(dst.data[0] == 77 && dst.data[1] == 77 && dst.data[2] == 77 && dst.data[3] == 255);
    vram_free(dst.data);
    src = make(1, 1, 4, rgba);
    CHECK_OK(vram_image_resample(&src, 1, 1, 3, &dst));
    CHECK(dst.data[0] == 10 && dst.data[1] == 20 && dst.data[2] == 30);
    vram_free(dst.data);
    CHECK_OK(vram_image_resample(&src, 1, 1, 2, &dst));
    CHECK_EQ(dst.data[1], 40);      /* alpha kept */
    vram_free(dst.data);
}

TEST(rows_with_padding_are_read_by_their_stride)
{
    uint8_t px[2 * 8] = { 1, 2, 3, 4, 5, 6, 0xEE, 0xEE, 7, 8, 9, 10, 11, 12, 0xEE, 0xEE };
    vram_image src = { 2, 2, 3, 8, px }, dst;
    CHECK_OK(vram_image_resample(&src, 2, 2, 3, &dst));
    uint8_t want[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
    CHECK(memcmp(dst.data, want, 12) == 0);
    vram_free(dst.data);
}

TEST(bad_images_are_refused)
{
    uint8_t px[4] = { 0 };
    vram_image dst, src = make(2, 2, 1, px);
    CHECK_ERR(vram_image_resample(NULL, 1, 1, 1, &dst), VRAM_EINVAL);
    CHECK_ERR(vram_image_resample(&src, 0, 1, 1, &dst), VRAM_EINVAL);
    CHECK_ERR(vram_image_resample(&src, 1, 1, 5, &dst), VRAM_EINVAL);
    CHECK(dst.data == NULL);
    src.stride = 1;                 /* shorter than a row */
    CHECK_ERR(vram_image_resample(&src, 1, 1, 1, &dst), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "stride 1");
    src = make(2, 2, 0, px);
    CHECK_ERR(vram_image_resample(&src, 1, 1, 1, &dst), VRAM_EINVAL);
    src = make(2, 2, 1, NULL);
    CHECK_ERR(vram_image_resample(&src, 1, 1, 1, &dst), VRAM_EINVAL);
}
