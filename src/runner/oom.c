/*
 * runner/oom.c - recognises a GPU out-of-memory death in a program's output.
 *
 * PyTorch says what it tried to allocate and what was free, in one of two
 * phrasings (torch >= 2.1, and the older parenthesised one); the CUDA driver,
 * runtime and libraries say less.  The numbers matter: what was tried and
 * what was free tell the next rung how much cheaper it must be.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

/* Reads "22.78 GiB", "20.00 MiB", "0 bytes" at p; returns the end or NULL. */
static const char *read_amount(const char *p, const char *end, uint64_t *bytes)
{
    while (p < end && *p == ' ')
        p++;
    char num[32];
    size_t n = 0;
    while (p < end && n + 1 < sizeof(num) && (isdigit((unsigned char)*p) || *p == '.'))
        num[n++] = *p++;
    num[n] = '\0';
    if (n == 0)
        return NULL;
    while (p < end && *p == ' ')
        p++;
    static const struct { const char *unit; double factor; } units[] = {
        { "bytes", 1 }, { "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
        { "TiB", 1099511627776.0 }, { "B", 1 },
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(units); i++) {
        size_t len = strlen(units[i].unit);
        if ((size_t)(end - p) >= len && !strncmp(p, units[i].unit, len)) {
            *bytes = (uint64_t)(strtod(num, NULL) * units[i].factor + 0.5);
            return p + len;
        }
    }
    return NULL;
}

/* Finds needle in [p, end); returns the position after it or NULL. */
static const char *after(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; p + n <= end; p++)
        if (!memcmp(p, needle, n))
            return p + n;
    return NULL;
}

/* The amount that follows needle, if both are in [p, end). */
static void amount_after(const char *p, const char *end, const char *needle, uint64_t *bytes)
{
    const char *at = after(p, end, needle);
    if (at)
        read_amount(at, end, bytes);
}

/* The amount just before needle ("9.08 GiB is allocated by PyTorch"). */
static void amount_before(const char *p, const char *end, const char *needle, uint64_t *bytes)
{
    const char *at = after(p, end, needle);
    if (!at)
        return;
    const char *q = at - strlen(needle);
    /* Step back over "<number> <unit>" */
    while (q > p && q[-1] == ' ')
        q--;
    while (q > p && isalpha((unsigned char)q[-1]))
        q--;
    while (q > p && q[-1] == ' ')
        q--;
    while (q > p && (isdigit((unsigned char)q[-1]) || q[-1] == '.'))
        q--;
    read_amount(q, end, bytes);
}

static void keep_line(vram_oom_report *r, const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if (n >= sizeof(r->line))
        n = sizeof(r->line) - 1;
    memcpy(r->line, p, n);
    r->line[n] = '\0';
    vram__trim(r->line);
}

/* One line of output; returns the source it matched, or 0. */
static int parse_line(const char *p, const char *end, vram_oom_report *r)
{
    const char *oom = after(p, end, "out of memory. Tried to allocate");
    if (oom) {
        memset(r, 0, sizeof(*r));
        r->gpu = -1;
        read_amount(oom, end, &r->tried_bytes);
        const char *gpu = after(oom, end, "GPU ");
        if (gpu)
            r->gpu = atoi(gpu);
        if (after(oom, end, "total capacity of") || after(oom, end, "total capacty of")) {
            r->source = VRAM_OOM_PYTORCH;
            amount_after(oom, end, "total capacity of", &r->total_bytes);
            amount_after(oom, end, "total capacty of", &r->total_bytes);
            amount_after(oom, end, "of which", &r->free_bytes);
            amount_after(oom, end, "this process has", &r->process_bytes);
            amount_before(oom, end, "is allocated by PyTorch", &r->allocated_bytes);
            amount_before(oom, end, "is reserved by PyTorch", &r->reserved_bytes);
        } else {
            r->source = VRAM_OOM_PYTORCH_OLD;
            amount_before(oom, end, "total capacity", &r->total_bytes);
            amount_before(oom, end, "already allocated", &r->allocated_bytes);
            amount_before(oom, end, "free;", &r->free_bytes);
            amount_before(oom, end, "reserved in total", &r->reserved_bytes);
        }
        keep_line(r, p, end);
        return r->source;
    }
    static const struct { const char *needle; int source; } bare[] = {
        { "CUDA_ERROR_OUT_OF_MEMORY", VRAM_OOM_DRIVER },
        { "cudaErrorMemoryAllocation", VRAM_OOM_DRIVER },
        { "CUDA error: out of memory", VRAM_OOM_DRIVER },
        { "CUDA out of memory", VRAM_OOM_DRIVER },
        { "CUBLAS_STATUS_ALLOC_FAILED", VRAM_OOM_LIBRARY },
        { "CUDNN_STATUS_ALLOC_FAILED", VRAM_OOM_LIBRARY },
        { "HIP out of memory", VRAM_OOM_LIBRARY },
        { "OutOfMemoryError", VRAM_OOM_DRIVER },
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(bare); i++)
        if (after(p, end, bare[i].needle)) {
            memset(r, 0, sizeof(*r));
            r->gpu = -1;
            r->source = bare[i].source;
            keep_line(r, p, end);
            return r->source;
        }
    return 0;
}

int vram_oom_parse(const char *text, size_t len, vram_oom_report *out)
{
    if (!out || (!text && len))
        return vram__fail(VRAM_EINVAL, "vram_oom_parse: NULL argument");
    memset(out, 0, sizeof(*out));
    out->gpu = -1;
    const char *end = text + len;
    int found = 0;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        vram_oom_report r;
        int source = parse_line(p, line_end, &r);
        /* A detailed PyTorch report beats a bare mention on another line. */
        if (source && (!found || (out->tried_bytes == 0 && r.tried_bytes > 0))) {
            *out = r;
            found = 1;
        }
        p = nl ? nl + 1 : end;
    }
    return found;
}
