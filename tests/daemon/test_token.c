/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_token.c - the token file: random, owner-only, refused
 * when others could read it, compared in constant time.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/http.h"
#include "test.h"

static char *temp_dir(void)
{
    static char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/vram-token-XXXXXX");
    return mkdtemp(dir);
}

TEST(create_writes_an_owner_only_file)
{
    char *dir = temp_dir();
    CHECK(dir != NULL);
    char path[256], a[VRAM__TOKEN_LEN + 1], b[VRAM__TOKEN_LEN + 1], back[VRAM__TOKEN_LEN + 1];
    snprintf(path, sizeof(path), "%s/new/sub/http-token", dir);
    CHECK_OK(vram__token_create(path, a));
    CHECK_EQ(strlen(a), VRAM__TOKEN_LEN);
    CHECK_EQ(strspn(a, "0123456789abcdef"), VRAM__TOKEN_LEN);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/new/sub", dir);
    CHECK(stat(sub, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0700);
    CHECK_OK(vram__token_read(path, back));
    CHECK_STR_EQ(back, a);

    /* A new start makes a new token and replaces the file. */
    CHECK_OK(vram__token_create(path, b));
    CHECK(strcmp(a, b) != 0);
    CHECK_OK(vram__token_read(path, back));
    CHECK_STR_EQ(back, b);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(read_refuses_what_is_not_a_private_token)
{
    char *dir = temp_dir();
    CHECK(dir != NULL);
    char path[256], tok[VRAM__TOKEN_LEN + 1];
    snprintf(path, sizeof(path), "%s/http-token", dir);
    CHECK_ERR(vram__token_read(path, tok), VRAM_ENOENT);
    CHECK_CONTAINS(vram_last_error(), path);
    CHECK_OK(vram__token_create(path, tok));
    CHECK(chmod(path, 0644) == 0);
    CHECK_ERR(vram__token_read(path, tok), VRAM_EPERM);
    CHECK_CONTAINS(vram_last_error(), "may be read by others (mode 644)");
    CHECK_STR_EQ(tok, "");

    FILE *f = fopen(path, "w");
    fputs("not-a-token\n", f);
    fclose(f);
    CHECK(chmod(path, 0600) == 0);
    CHECK_ERR(vram__token_read(path, tok), VRAM_EPARSE);
    CHECK_CONTAINS(vram_last_error(), "64 hex digits");

    char link[256];
    snprintf(link, sizeof(link), "%s/link", dir);
    CHECK(symlink(path, link) == 0);
    CHECK(vram__token_read(link, tok) != 0);        /* a symlink is never followed */
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(default_path_follows_the_environment)
{
    char buf[512];
    char *runtime = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    CHECK_OK(vram__token_path(NULL, buf, sizeof(buf)));
    CHECK_STR_EQ(buf, "/run/user/1000/vram/http-token");
    unsetenv("XDG_RUNTIME_DIR");
    setenv("HOME", "/home/ada", 1);
    CHECK_OK(vram__token_path("", buf, sizeof(buf)));
    CHECK_STR_EQ(buf, "/home/ada/.local/state/vram/http-token");
    CHECK_OK(vram__token_path("/etc/x", buf, sizeof(buf)));
    CHECK_STR_EQ(buf, "/etc/x");
    if (runtime)
        setenv("XDG_RUNTIME_DIR", runtime, 1);
    free(runtime);
}

TEST(equal_compares_whole_tokens)
{
    CHECK(vram__token_equal("abc", "abc"));
    CHECK(!vram__token_equal("abd", "abc"));
    CHECK(!vram__token_equal("ab", "abc"));
    CHECK(!vram__token_equal("abcd", "abc"));
    CHECK(!vram__token_equal("", "abc"));
    CHECK(!vram__token_equal(NULL, "abc"));
}
