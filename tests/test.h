/* SPDX-License-Identifier: MIT */
/*
 * tests/test.h - the test harness: one binary per file, cases declared with
 * TEST(name), typed checks that say what differed.
 *
 * Each case prints "ok - file/case", "not ok - file/case: why" or
 * "skip - file/case: why"; tests/run.sh counts those lines.  The binary
 * exits 0 when every case passed, 1 when one failed, 77 when all skipped.
 * A failed check ends its case (it returns from the TEST function), so
 * checks belong in the TEST body or in macros, not in helper functions;
 * helpers return a value the body checks.  `./test_x NAME` runs the cases
 * whose name contains NAME.
 */
#ifndef VRAM_TEST_H
#define VRAM_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exports.h"
#include "vram.h"

typedef void (*test_fn)(void);

#define TEST_MAX_CASES 256

static struct {
    const char *name[TEST_MAX_CASES];
    test_fn fn[TEST_MAX_CASES];
    int count;
    bool failed, skipped;
    char why[1024];
} test_state;

static inline void test_register(const char *name, test_fn fn)
{
    if (test_state.count < TEST_MAX_CASES) {
        test_state.name[test_state.count] = name;
        test_state.fn[test_state.count++] = fn;
    }
}

#define TEST(id)                                                              \
    static void test_##id(void);                                              \
    __attribute__((constructor)) static void test_reg_##id(void)              \
    {                                                                         \
        test_register(#id, test_##id);                                        \
    }                                                                         \
    static void test_##id(void)

#define TEST_FAIL_(...)                                                       \
    do {                                                                      \
        int at_ = snprintf(test_state.why, sizeof(test_state.why), "%s:%d: ", \
                           __FILE__, __LINE__);                               \
        snprintf(test_state.why + at_, sizeof(test_state.why) - (size_t)at_,  \
                 __VA_ARGS__);                                                \
        test_state.failed = true;                                             \
        return;                                                               \
    } while (0)

#define TEST_SKIP(...)                                                        \
    do {                                                                      \
        snprintf(test_state.why, sizeof(test_state.why), __VA_ARGS__);        \
        test_state.skipped = true;                                            \
        return;                                                               \
    } while (0)

/* buf (an array) gets the path of rel in the build (VRAM_BUILD, which
 * tests/run.sh sets: what a test needs of it, the vram runner, the shim,
 * a stub); the test skips without it. */
#define TEST_BUILD_PATH(buf, rel)                                             \
    do {                                                                      \
        const char *build_ = getenv("VRAM_BUILD");                            \
        if (!build_)                                                          \
            TEST_SKIP("needs VRAM_BUILD (run through tests/run.sh) for %s", rel); \
        snprintf(buf, sizeof(buf), "%s/%s", build_, rel);                     \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond))                                                          \
            TEST_FAIL_("CHECK(%s) failed", #cond);                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (!(cond))                                                          \
            TEST_FAIL_(__VA_ARGS__);                                          \
    } while (0)

#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        if (rc_ != 0)                                                         \
            TEST_FAIL_("%s returned %s: %s", #expr, vram_errname(rc_),        \
                       vram_last_error());                                    \
    } while (0)

#define CHECK_ERR(expr, want)                                                 \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        if (rc_ != (want))                                                    \
            TEST_FAIL_("%s returned %s, wanted %s (%s)", #expr,               \
                       vram_errname(rc_), vram_errname(want),                 \
                       vram_last_error());                                    \
    } while (0)

#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_)                                                         \
            TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);             \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                    \
    do {                                                                      \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                      \
        if (a_ != b_)                                                         \
            TEST_FAIL_("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, a_, b_);  \
    } while (0)

#define CHECK_NEAR(a, b, eps)                                                 \
    do {                                                                      \
        double a_ = (double)(a), b_ = (double)(b);                            \
        if (!(fabs(a_ - b_) <= (eps)))                                        \
            TEST_FAIL_("%s ~ %s: %g vs %g (eps %g)", #a, #b, a_, b_,          \
                       (double)(eps));                                        \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                    \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                \
            TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b,                  \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");               \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                           \
    do {                                                                      \
        const char *h_ = (hay), *n_ = (needle);                               \
        if (!h_ || !strstr(h_, n_))                                           \
            TEST_FAIL_("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)",  \
                       n_);                                                   \
    } while (0)

static const char *test_file_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *file = test_file_name(argv[0]);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < test_state.count; i++) {
        if (filter && !strstr(test_state.name[i], filter))
            continue;
        test_state.failed = test_state.skipped = false;
        test_state.why[0] = '\0';
        test_state.fn[i]();
        if (test_state.failed) {
            printf("not ok - %s/%s: %s\n", file, test_state.name[i], test_state.why);
            failed++;
        } else if (test_state.skipped) {
            printf("skip - %s/%s: %s\n", file, test_state.name[i], test_state.why);
            skipped++;
        } else {
            printf("ok - %s/%s\n", file, test_state.name[i]);
            passed++;
        }
        fflush(stdout);
    }
    if (failed)
        return 1;
    return passed == 0 && skipped > 0 ? 77 : 0;
}

#endif /* VRAM_TEST_H */
