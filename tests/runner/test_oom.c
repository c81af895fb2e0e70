/* SPDX-License-Identifier: MIT */
/*
 * tests/runner/test_oom.c - out-of-memory messages as PyTorch, the CUDA
 * driver and the libraries really print them.
 */
#include "test.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static int parse(const char *text, vram_oom_report *r)
{
    return vram_oom_parse(text, strlen(text), r);
}

TEST(pytorch_2_message)
{
    vram_oom_report r;
    const char *text =
        "Traceback (most recent call last):\n"
        "  File \"infer.py\", line 12, in <module>\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 22.78 GiB. GPU 0 has a "
        "total capacity of 31.47 GiB of which 12.73 GiB is free. Including non-PyTorch memory, "
        "this process has 18.73 GiB memory in use. Of the allocated memory 9.08 GiB is allocated "
        "by PyTorch, and 9.35 GiB is reserved by PyTorch but unallocated. If reserved but "
        "unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True\n";
    CHECK_EQ(parse(text, &r), 1);
    CHECK_EQ(r.source, VRAM_OOM_PYTORCH);
    CHECK_EQ(r.gpu, 0);
    CHECK_NEAR((double)r.tried_bytes / GiB, 22.78, 0.005);
    CHECK_NEAR((double)r.total_bytes / GiB, 31.47, 0.005);
    CHECK_NEAR((double)r.free_bytes / GiB, 12.73, 0.005);
    CHECK_NEAR((double)r.process_bytes / GiB, 18.73, 0.005);
    CHECK_NEAR((double)r.allocated_bytes / GiB, 9.08, 0.005);
    CHECK_NEAR((double)r.reserved_bytes / GiB, 9.35, 0.005);
    CHECK_CONTAINS(r.line, "torch.OutOfMemoryError");
}

TEST(pytorch_typo_and_zero_bytes_free)
{
    vram_oom_report r;
    CHECK_EQ(parse("torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. "
                   "GPU 1 has a total capacty of 6.00 GiB of which 0 bytes is free. Of the "
                   "allocated memory 2.93 GiB is allocated by PyTorch", &r), 1);
    CHECK_EQ(r.gpu, 1);
    CHECK_EQ_U64(r.total_bytes, 6 * GiB);
    CHECK_EQ_U64(r.free_bytes, 0);
    CHECK_NEAR((double)r.tried_bytes / GiB, 1.70, 0.005);
}

TEST(pytorch_old_message)
{
    vram_oom_report r;
    CHECK_EQ(parse("RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 10.76 GiB "
                   "total capacity; 9.53 GiB already allocated; 9.44 MiB free; 9.74 GiB reserved in "
                   "total by PyTorch)", &r), 1);
    CHECK_EQ(r.source, VRAM_OOM_PYTORCH_OLD);
    CHECK_EQ_U64(r.tried_bytes, 20 * MiB);
    CHECK_NEAR((double)r.total_bytes / GiB, 10.76, 0.005);
    CHECK_NEAR((double)r.allocated_bytes / GiB, 9.53, 0.005);
    CHECK_NEAR((double)r.free_bytes / MiB, 9.44, 0.005);
    CHECK_NEAR((double)r.reserved_bytes / GiB, 9.74, 0.005);
}

TEST(driver_and_library_messages)
{
    static const struct { const char *text; int source; } cases[] = {
        { "RuntimeError: CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported", VRAM_OOM_DRIVER },
        { "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY", VRAM_OOM_DRIVER },
        { "error: cudaErrorMemoryAllocation", VRAM_OOM_DRIVER },
        { "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)", VRAM_OOM_LIBRARY },
        { "torch.OutOfMemoryError: HIP out of memory.", VRAM_OOM_LIBRARY },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vram_oom_report r;
        CHECK_MSG(parse(cases[i].text, &r) == 1, "not seen: %s", cases[i].text);
        CHECK_MSG(r.source == cases[i].source, "%s: source %d", cases[i].text, r.source);
        CHECK_EQ_U64(r.tried_bytes, 0);
    }
}

TEST(detailed_report_wins_and_ordinary_output_is_not_oom)
{
    vram_oom_report r;
    CHECK_EQ(parse("CUBLAS_STATUS_ALLOC_FAILED\ntorch.OutOfMemoryError: CUDA out of memory. Tried to "
                   "allocate 2.00 GiB. GPU 0 has a total capacity of 14.75 GiB of which 1.06 GiB is free.\n",
                   &r), 1);
    CHECK_EQ_U64(r.tried_bytes, 2 * GiB);
    CHECK_EQ(parse("loading model... done\nstep 10/50 loss 0.3\nmemory: 4.2 GiB\n", &r), 0);
    CHECK_EQ(parse("", &r), 0);
    CHECK_EQ(parse("Traceback\nValueError: bad frame size\n", &r), 0);
    CHECK_ERR(vram_oom_parse(NULL, 5, &r), VRAM_EINVAL);
    /* Not NUL-terminated: only len bytes are read. */
    char buf[40];
    memcpy(buf, "CUDA_ERROR_OUT_OF_MEMORY", 24);
    memset(buf + 24, 'x', sizeof(buf) - 24);
    CHECK_EQ(vram_oom_parse(buf, 10, &r), 0);
    CHECK_EQ(vram_oom_parse(buf, 24, &r), 1);
}

/* ---- the table of real messages (shared with python/tests/test_oom_table.py) ---- */

static char *read_messages(size_t *len)
{
    char path[4096];
    const char *top = getenv("VRAM_TOP");
    snprintf(path, sizeof(path), "%s/tests/runner/oom_messages.txt", top ? top : ".");
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 17];
    *len = fread(buf, 1, sizeof(buf) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

TEST(every_message_of_the_table_and_the_last_failure_decides)
{
    size_t len;
    char *text = read_messages(&len);
    if (!text)
        TEST_SKIP("tests/runner/oom_messages.txt not found (VRAM_TOP unset)");
    int cases = 0, ooms = 0;
    char *p = strstr(text, "\n=== ");
    while (p) {
        p++;
        char *eol = strchr(p, '\n');
        CHECK(eol);
        char name[64], verdict[8], pattern[32];
        unsigned long long tried;
        CHECK_EQ(sscanf(p, "=== %63s %7s %31s %llu", name, verdict, pattern, &tried), 4);
        char *body = eol + 1;
        char *next = strstr(body, "\n=== ");
        size_t body_len = next ? (size_t)(next - body) + 1 : strlen(body);
        vram_oom_report r;
        int got = vram_oom_parse(body, body_len, &r);
        bool want = !strcmp(verdict, "oom");
        CHECK_MSG(got == (want ? 1 : 0), "%s: verdict %d, wanted %s", name, got, verdict);
        if (want) {
            CHECK_MSG(!strcmp(r.pattern, pattern), "%s: pattern %s, wanted %s", name, r.pattern, pattern);
            CHECK_MSG(r.tried_bytes == tried, "%s: tried %llu, wanted %llu", name,
                      (unsigned long long)r.tried_bytes, tried);
            ooms++;
        }
        cases++;
        p = next;
    }
    CHECK(cases >= 20);
    CHECK(ooms >= 18);
}

TEST(under_a_memory_fraction_allowed_is_read)
{
    vram_oom_report r;
    CHECK_EQ(parse("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
                   "total capacity of 79.10 GiB of which 70.12 GiB is free. Including non-PyTorch "
                   "memory, this process has 8.47 GiB memory in use. 7.91 GiB allowed; Of the "
                   "allocated memory 6.00 GiB is allocated by PyTorch, and 1.50 GiB is reserved by "
                   "PyTorch but unallocated.", &r), 1);
    CHECK_NEAR((double)r.allowed_bytes / GiB, 7.91, 0.005);
    CHECK_NEAR((double)r.free_bytes / GiB, 70.12, 0.005);
    CHECK_EQ(parse("RuntimeError: CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; 23.69 GiB "
                   "total capacity; 3.20 GiB already allocated; 19.80 GiB free; 3.55 GiB allowed; "
                   "3.50 GiB reserved in total by PyTorch)", &r), 1);
    CHECK_NEAR((double)r.allowed_bytes / GiB, 3.55, 0.005);
    CHECK_NEAR((double)r.reserved_bytes / GiB, 3.50, 0.005);
    CHECK_EQ(parse("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
                   "total capacity of 14.75 GiB of which 1.06 GiB is free.", &r), 1);
    CHECK_EQ_U64(r.allowed_bytes, 0);
}

/* A job prints what it likes: amounts past 2^64 bytes (a number of 30
 * digits, a "bare integer" of 25) read as the most there is, never as what
 * a float cast out of range makes of them (undefined; 0 here), and a GPU
 * number past int's range as no GPU. */
TEST(amounts_out_of_range_saturate)
{
    vram_oom_report r;
    CHECK_EQ(parse("onnxruntime: Failed to allocate memory for requested buffer of size "
                   "1234567890123456789012345", &r), 1);
    CHECK_EQ_U64(r.tried_bytes, UINT64_MAX);
    CHECK_EQ(parse("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate "
                   "999999999999999999999999999999 TiB. GPU 99999999999999999999 has a total capacity of "
                   "99999999999999999999.5 GiB of which 1.00 GiB is free.", &r), 1);
    CHECK_EQ(r.gpu, -1);
    CHECK_EQ_U64(r.tried_bytes, UINT64_MAX);
    CHECK_EQ_U64(r.total_bytes, UINT64_MAX);
    CHECK_EQ_U64(r.free_bytes, GiB);
}
