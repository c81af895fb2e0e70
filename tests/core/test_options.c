/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_options.c - the options table: defaults, checks, the
 * environment, and the error list.
 */
#include "test.h"

TEST(defaults_and_set)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_STR_EQ(vram_options_get(o, "margin"), "10%");
    CHECK_STR_EQ(vram_options_get(o, "backend"), "auto");
    CHECK_STR_EQ(vram_options_get(o, "interval"), "100ms");
    CHECK(vram_options_get(o, "no-such") == NULL);
    CHECK_OK(vram_options_set(o, "margin", "2GiB", NULL));
    CHECK_STR_EQ(vram_options_get(o, "margin"), "2GiB");
    CHECK_OK(vram_options_set(o, "sim_state", "/tmp", NULL));
    CHECK_STR_EQ(vram_options_get(o, "sim-state"), "/tmp");
    vram_options_free(o);
}

TEST(bad_values_name_the_source)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_ERR(vram_options_set(o, "margin", "150%", NULL), VRAM_ERANGE);
    CHECK_CONTAINS(vram_last_error(), "--margin");
    CHECK_CONTAINS(vram_last_error(), "150%");
    CHECK_ERR(vram_options_set(o, "backend", "cuda9", "VRAM_BACKEND"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "VRAM_BACKEND: 'cuda9' is not one of auto|nvml|sim");
    CHECK_ERR(vram_options_set(o, "interval", "0", NULL), VRAM_EINVAL);
    CHECK_ERR(vram_options_set(o, "interval", "fast", NULL), VRAM_EINVAL);
    CHECK_ERR(vram_options_set(o, "frobnicate", "1", NULL), VRAM_ENOENT);
    CHECK_STR_EQ(vram_options_get(o, "margin"), "10%");    /* unchanged by the failures */
    vram_options_free(o);
}

TEST(environment_strict_and_lenient)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    setenv("VRAM_MARGIN", "5%", 1);
    CHECK_OK(vram_options_load_env(o));
    CHECK_STR_EQ(vram_options_get(o, "margin"), "5%");
    setenv("VRAM_MARGIN", "12XB", 1);
    CHECK_ERR(vram_options_load_env(o), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "VRAM_MARGIN");
    vram_options_free(o);

    /* The library, opened with no options, warns and keeps the default. */
    setenv("VRAM_BACKEND", "sim", 1);
    vram_ctx *ctx;
    CHECK_OK(vram_ctx_open(&ctx, NULL));
    CHECK_STR_EQ(vram_options_get(vram_ctx_options(ctx), "margin"), "10%");
    CHECK_STR_EQ(vram_ctx_backend(ctx), "sim");
    CHECK_OK(vram_ctx_close(ctx));
    unsetenv("VRAM_MARGIN");
    unsetenv("VRAM_BACKEND");
}

TEST(describe_lists_every_option)
{
    const char *name, *def, *help;
    unsigned n = 0;
    while (vram_option_describe(n, &name, &def, &help) == 0) {
        CHECK(name && *name && def && help && *help);
        n++;
    }
    CHECK(n >= 6);
    CHECK_ERR(vram_option_describe(n, &name, &def, &help), VRAM_ENOENT);
}

TEST(error_list)
{
    CHECK_STR_EQ(vram_errname(0), "VRAM_OK");
    CHECK_STR_EQ(vram_errname(VRAM_EINVAL), "VRAM_EINVAL");
    CHECK_STR_EQ(vram_errname(VRAM_ENOLIB), "VRAM_ENOLIB");
    CHECK_STR_EQ(vram_errname(-99999), "VRAM_E?");
    CHECK_STR_EQ(vram_strerror(VRAM_EBUDGET), "request exceeds the memory budget");
    CHECK(vram_strerror(-99999) != NULL);
    CHECK_EQ(VRAM_EINVAL, -22);
    CHECK_EQ(VRAM_EINTERNAL, -4000);
}

TEST(version)
{
    CHECK_EQ(vram_version_number(), VRAM_VERSION_NUMBER);
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", VRAM_VERSION_MAJOR, VRAM_VERSION_MINOR, VRAM_VERSION_PATCH);
    CHECK_STR_EQ(vram_version(), want);
}
