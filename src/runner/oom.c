/* SPDX-License-Identifier: MIT */
/*
 * runner/oom.c - recognises a GPU out-of-memory death in a program's output.
 *
 * PyTorch says what it tried to allocate and what was free, in one of two
 * phrasings (torch >= 2.1, and the older parenthesised one), and under a
 * memory fraction what was allowed; the CUDA driver, runtime, libraries and
 * other frameworks say less.  The numbers matter: what was tried and what
 * was free (or allowed) tell the next rung how much cheaper it must be.
 *
 * Owns the one table of out-of-memory messages (OOM_PATTERNS below): the
 * runner reads it here and the Python binding calls vram_oom_parse, so the
 * two never disagree.  The verdict is the last failure's: a handled
 * out-of-memory followed by another failure is not what ended the program.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdbool.h>

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
            /* A program prints what it likes: past 2^64 is the most there
             * is (a float cast out of range is undefined). */
            double v = strtod(num, NULL) * units[i].factor + 0.5;
            *bytes = v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
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

/* The messages, one line each: a pattern matches a line holding `needle`
 * (and `also`, when given).  `amount` names what follows `at` as the bytes
 * tried: "bytes:" then the words before a bare integer ("of size 4294967296").  PyTorch's detailed reports are read apart, below.  The
 * first entry that matches wins, so the generic ones come last.  Each
 * entry's test message, with the lines real logs put around it, is in
 * tests/runner/oom_messages.txt. */
#define OOM_PATTERNS(X)                                                                      \
    X("cuda-driver",  VRAM_OOM_DRIVER,    "CUDA driver error: out of memory", NULL, NULL)    \
    X("cuda-runtime", VRAM_OOM_DRIVER,    "CUDA error: out of memory", NULL, NULL)           \
    X("cuda-api",     VRAM_OOM_DRIVER,    "CUDA_ERROR_OUT_OF_MEMORY", NULL, NULL)            \
    X("cuda-rt-api",  VRAM_OOM_DRIVER,    "cudaErrorMemoryAllocation", NULL, NULL)           \
    X("cublas",       VRAM_OOM_LIBRARY,   "CUBLAS_STATUS_ALLOC_FAILED", NULL, NULL)          \
    X("cudnn8",       VRAM_OOM_LIBRARY,   "CUDNN_STATUS_ALLOC_FAILED", NULL, NULL)           \
    X("cudnn9",       VRAM_OOM_LIBRARY,   "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED", NULL, NULL) \
    X("cufft",        VRAM_OOM_LIBRARY,   "CUFFT_ALLOC_FAILED", NULL, NULL)                  \
    X("cusolver",     VRAM_OOM_LIBRARY,   "CUSOLVER_STATUS_ALLOC_FAILED", NULL, NULL)        \
    X("nccl",         VRAM_OOM_LIBRARY,   "Cuda failure", "out of memory", NULL)             \
    X("hip",          VRAM_OOM_LIBRARY,   "HIP out of memory", NULL, NULL)                   \
    X("onnxruntime",  VRAM_OOM_FRAMEWORK, "CUDA failure 2: out of memory", NULL, NULL)       \
    X("ort-arena",    VRAM_OOM_FRAMEWORK, "Failed to allocate memory for requested buffer", NULL, "bytes:of size ") \
    X("tensorflow",   VRAM_OOM_FRAMEWORK, "OOM when allocating tensor", NULL, NULL)          \
    X("tf-exhausted", VRAM_OOM_FRAMEWORK, "ResourceExhaustedError", NULL, NULL)              \
    X("xla",          VRAM_OOM_FRAMEWORK, "RESOURCE_EXHAUSTED: Out of memory", NULL, "bytes:allocate ") \
    X("torch",        VRAM_OOM_DRIVER,    "CUDA out of memory", NULL, NULL)                  \
    X("torch-class",  VRAM_OOM_DRIVER,    "OutOfMemoryError", NULL, NULL)

static const struct oom_pattern {
    const char *name;
    int source;
    const char *needle, *also, *amount;
} patterns[] = {
#define OOM_ROW(name, source, needle, also, amount) { name, source, needle, also, amount },
    OOM_PATTERNS(OOM_ROW)
#undef OOM_ROW
};

/* Reads a bare integer of bytes at p. */
static void read_integer(const char *p, const char *end, uint64_t *bytes)
{
    uint64_t v = 0;
    bool any = false;
    for (; p < end && isdigit((unsigned char)*p); p++) {
        unsigned digit = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - digit) / 10 ? UINT64_MAX : v * 10 + digit;
        any = true;
    }
    if (any)
        *bytes = v;
}

static void fresh(vram_oom_report *r, int source, const char *name)
{
    memset(r, 0, sizeof(*r));
    r->gpu = -1;
    r->source = source;
    vram__strlcpy(r->pattern, name, sizeof(r->pattern));
}

/* PyTorch's detailed report ("out of memory. Tried to allocate ..."). */
static int parse_pytorch(const char *p, const char *end, const char *oom, vram_oom_report *r)
{
    fresh(r, VRAM_OOM_PYTORCH, "torch2");
    read_amount(oom, end, &r->tried_bytes);
    const char *gpu = after(oom, end, "GPU ");
    if (gpu) {                      /* read within the line (atoi read on past its end) */
        uint64_t n = UINT64_MAX;
        read_integer(gpu, end, &n);
        r->gpu = n <= INT_MAX ? (int)n : -1;
    }
    amount_before(oom, end, "allowed;", &r->allowed_bytes);
    if (after(oom, end, "total capacity of") || after(oom, end, "total capacty of")) {
        amount_after(oom, end, "total capacity of", &r->total_bytes);
        amount_after(oom, end, "total capacty of", &r->total_bytes);
        amount_after(oom, end, "of which", &r->free_bytes);
        amount_after(oom, end, "this process has", &r->process_bytes);
        amount_before(oom, end, "is allocated by PyTorch", &r->allocated_bytes);
        amount_before(oom, end, "is reserved by PyTorch", &r->reserved_bytes);
    } else {
        r->source = VRAM_OOM_PYTORCH_OLD;
        vram__strlcpy(r->pattern, "torch1", sizeof(r->pattern));
        amount_before(oom, end, "total capacity", &r->total_bytes);
        amount_before(oom, end, "already allocated", &r->allocated_bytes);
        amount_before(oom, end, "free;", &r->free_bytes);
        amount_before(oom, end, "reserved in total", &r->reserved_bytes);
    }
    keep_line(r, p, end);
    return r->source;
}

/* One line of output; returns the source it matched, or 0. */
static int parse_line(const char *p, const char *end, vram_oom_report *r)
{
    const char *oom = after(p, end, "out of memory. Tried to allocate");
    if (oom)
        return parse_pytorch(p, end, oom, r);
    for (size_t i = 0; i < VRAM__ARRAY_LEN(patterns); i++) {
        const struct oom_pattern *t = &patterns[i];
        if (!after(p, end, t->needle) || (t->also && !after(p, end, t->also)))
            continue;
        fresh(r, t->source, t->name);
        if (t->amount) {
            const char *at = after(p, end, t->amount + strlen("bytes:"));
            if (at)
                read_integer(at, end, &r->tried_bytes);
        }
        keep_line(r, p, end);
        return r->source;
    }
    return 0;
}

static bool starts_with(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && !memcmp(p, word, n);
}

/* A line that begins a failure or says one happened: a Python traceback's
 * header, its final "SomeError: ..." line (at the start of the line, a
 * dotted name ending in Error, Exception, Exit or Interrupt), or a fatal
 * end of a native program. */
static bool failure_line(const char *p, const char *end)
{
    static const char *const fatal[] = {
        "Traceback (most recent call last)", "terminate called after throwing",
        "Fatal Python error", "Segmentation fault", "Aborted (core dumped)",
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(fatal); i++)
        if (starts_with(p, end, fatal[i]))
            return true;
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '_' || *q == '.'))
        q++;
    if (q == p || !isalpha((unsigned char)*p) || (q < end && *q != ':'))
        return false;
    static const char *const tails[] = { "Error", "Exception", "Exit", "Interrupt" };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(tails); i++) {
        size_t n = strlen(tails[i]);
        if ((size_t)(q - p) >= n && !memcmp(q - n, tails[i], n))
            return true;
    }
    return false;
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
        if (source) {
            /* Within one failure a detailed report beats a bare mention,
             * and a later one of the same detail the earlier. */
            if (!found || r.tried_bytes > 0 || out->tried_bytes == 0)
                *out = r;
            found = 1;
        } else if (failure_line(p, line_end)) {
            memset(out, 0, sizeof(*out));   /* what came before was handled */
            out->gpu = -1;
            found = 0;
        }
        p = nl ? nl + 1 : end;
    }
    return found;
}
