/* SPDX-License-Identifier: MIT */
/*
 * sched/image.c - resampling frames of 8-bit channels with a Lanczos-3
 * filter, so one odd frame cannot stop a video from being assembled.
 *
 * Owns channel conversion (gray, gray+alpha, RGB, RGBA, in any direction)
 * and separable resampling: channels are converted first, then rows, then
 * columns, in floating point, rounded and clamped back to 8 bits once.  On
 * a shrink the filter widens with the scale, so it averages instead of
 * skipping pixels; at the same size it reproduces the input exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

#define LANCZOS_A 3.0
#define MAX_PIXELS (1ull << 28)     /* 268 M pixels: a 16k x 16k frame */

bool vram__image_valid(const vram_image *im)
{
    return im && im->data && im->width && im->height && im->channels >= 1 &&
           im->channels <= 4 && im->stride >= (uint64_t)im->width * im->channels &&
           (uint64_t)im->width * im->height <= MAX_PIXELS;
}

/* sin(pi t) for |t| < 2^52, without libm (core.h says why): t less its
 * nearest integer n is exact and within [-1/2, 1/2], where Taylor's series
 * to t^23 is within an ulp or two; sin(pi (n + r)) = (-1)^n sin(pi r). */
static double sin_pi(double t)
{
    long long n = vram__llround(t);
    double x = M_PI * (t - (double)n), x2 = x * x;
    static const double k[] = { 506, 420, 342, 272, 210, 156, 110, 72, 42, 20, 6 };
    double p = 1;
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        p = 1 - x2 / k[i] * p;
    return (n & 1 ? -x : x) * p;
}

static double sinc(double x)
{
    if (fabs(x) < 1e-9)
        return 1.0;
    return sin_pi(x) / (M_PI * x);
}

static double lanczos(double x)
{
    return fabs(x) < LANCZOS_A ? sinc(x) * sinc(x / LANCZOS_A) : 0.0;
}

/* ---- channels ------------------------------------------------------------------ */

static float luma(const uint8_t *p)
{
    return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

/* One pixel of `from` channels as `to` channels. */
static void convert_pixel(const uint8_t *p, uint32_t from, float *q, uint32_t to)
{
    bool src_color = from >= 3, src_alpha = from == 2 || from == 4;
    float gray = src_color ? luma(p) : p[0];
    float alpha = src_alpha ? p[from - 1] : 255.0f;
    switch (to) {
    case 1:
        q[0] = gray;
        break;
    case 2:
        q[0] = gray;
        q[1] = alpha;
        break;
    default:
        for (int c = 0; c < 3; c++)
            q[c] = src_color ? p[c] : gray;
        if (to == 4)
            q[3] = alpha;
    }
}

/* ---- resampling along one axis ----------------------------------------------------- */

/* The taps of one output position: first source index and the weights. */
typedef struct taps {
    int first;
    int count;
    float *w;
} taps;

/* For n_out positions over n_in: weights of the (widened) Lanczos kernel,
 * normalised, with indices clamped to the edge. */
static taps *make_taps(uint32_t n_in, uint32_t n_out, float **pool)
{
    double scale = (double)n_in / n_out;
    double widen = scale > 1 ? scale : 1;
    int span = (int)ceil(LANCZOS_A * widen) * 2 + 1;
    taps *t = calloc(n_out, sizeof(*t));
    float *w = calloc((size_t)n_out * (size_t)span, sizeof(*w));
    if (!t || !w) {
        free(t);
        free(w);
        return NULL;
    }
    for (uint32_t i = 0; i < n_out; i++) {
        double center = (i + 0.5) * scale - 0.5;
        int first = (int)ceil(center - LANCZOS_A * widen);
        t[i].first = first;
        t[i].w = w + (size_t)i * span;
        double sum = 0;
        for (int k = 0; k < span; k++) {
            double x = (first + k - center) / widen;
            if (x >= LANCZOS_A)
                break;
            t[i].w[k] = (float)lanczos(x);
            sum += t[i].w[k];
            t[i].count = k + 1;
        }
        for (int k = 0; k < t[i].count; k++)
            t[i].w[k] = (float)(t[i].w[k] / sum);
    }
    *pool = w;
    return t;
}

static int clamp_index(int i, uint32_t n)
{
    return i < 0 ? 0 : i >= (int)n ? (int)n - 1 : i;
}

/* Resamples `lines` lines of n_in samples to n_out: a sample is `ch`
 * floats, samples are *_step floats apart and lines *_line apart. */
static void resample_axis(const float *in, float *out, uint32_t lines, uint32_t n_in,
                          uint32_t n_out, uint32_t ch, size_t in_step, size_t in_line,
                          size_t out_step, size_t out_line, const taps *t)
{
    for (uint32_t y = 0; y < lines; y++) {
        const float *src = in + y * in_line;
        float *dst = out + y * out_line;
        for (uint32_t i = 0; i < n_out; i++) {
            float acc[4] = { 0, 0, 0, 0 };
            for (int k = 0; k < t[i].count; k++) {
                const float *p = src + (size_t)clamp_index(t[i].first + k, n_in) * in_step;
                for (uint32_t c = 0; c < ch; c++)
                    acc[c] += t[i].w[k] * p[c];
            }
            memcpy(dst + i * out_step, acc, ch * sizeof(float));
        }
    }
}

static uint8_t to_byte(float v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lrintf(v);
}

int vram_image_resample(const vram_image *src, uint32_t width, uint32_t height, uint32_t channels,
                        vram_image *dst)
{
    if (!src || !dst)
        return vram__fail(VRAM_EINVAL, "vram_image_resample: NULL argument");
    memset(dst, 0, sizeof(*dst));
    if (!vram__image_valid(src))
        return vram__fail(VRAM_EINVAL, "not an image of 8-bit channels: %ux%u, %u channel(s), "
                          "stride %u", src->width, src->height, src->channels, src->stride);
    if (!width || !height || channels < 1 || channels > 4 ||
        (uint64_t)width * height > MAX_PIXELS)
        return vram__fail(VRAM_EINVAL, "cannot resample to %ux%u with %u channel(s)", width,
                          height, channels);
    uint32_t w0 = src->width, h0 = src->height, c = channels;
    float *a = malloc((size_t)w0 * h0 * c * sizeof(float));
    float *b = malloc((size_t)width * h0 * c * sizeof(float));
    float *out = malloc((size_t)width * height * c * sizeof(float));
    uint8_t *data = malloc((size_t)width * height * c);
    float *hw = NULL, *vw = NULL;
    taps *ht = make_taps(w0, width, &hw), *vt = make_taps(h0, height, &vw);
    int rc = 0;
    if (!a || !b || !out || !data || !ht || !vt) {
        rc = vram__fail(VRAM_ENOMEM, "out of host memory resampling a %ux%u image", width, height);
        free(data);
        goto done;
    }
    for (uint32_t y = 0; y < h0; y++)
        for (uint32_t x = 0; x < w0; x++)
            convert_pixel(src->data + (size_t)y * src->stride + (size_t)x * src->channels,
                          src->channels, a + ((size_t)y * w0 + x) * c, c);
    resample_axis(a, b, h0, w0, width, c, c, (size_t)w0 * c, c, (size_t)width * c, ht);
    resample_axis(b, out, width, h0, height, c, (size_t)width * c, c, (size_t)width * c, c, vt);
    for (size_t i = 0; i < (size_t)width * height * c; i++)
        data[i] = to_byte(out[i]);
    *dst = (vram_image){ width, height, c, width * c, data };
done:
    free(a);
    free(b);
    free(out);
    free(ht);
    free(vt);
    free(hw);
    free(vw);
    return rc;
}
