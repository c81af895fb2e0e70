/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_files.c - vram__remove_tree, which takes away the folder a
 * simulated run made for its cards: the whole tree, with no shell (a quote
 * in the name is a name), and never what a link in it points at.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "test.h"

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
        close(fd);
}

TEST(removes_the_tree_and_not_what_its_links_point_at)
{
    char top[64], path[256], keep[256];
    snprintf(top, sizeof(top), "/tmp/vram-files-%d-XXXXXX", (int)getpid());
    CHECK(mkdtemp(top) != NULL);
    snprintf(path, sizeof(path), "%s/it's here", top);       /* a quote ended the old rm -rf '%s' */
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/it's here/deeper", top);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/it's here/deeper/state", top);
    touch(path);
    snprintf(keep, sizeof(keep), "%s.keep", top);
    touch(keep);
    snprintf(path, sizeof(path), "%s/it's here/link", top);
    CHECK(symlink(keep, path) == 0);
    snprintf(path, sizeof(path), "%s/it's here", top);
    CHECK_EQ(vram__remove_tree(path), 0);
    struct stat st;
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    CHECK(stat(keep, &st) == 0);                             /* the link went, not its target */
    CHECK_EQ(vram__remove_tree(path), 0);                    /* gone already: nothing to do */
    CHECK_EQ(vram__remove_tree(top), 0);
    CHECK(stat(top, &st) != 0);
    unlink(keep);
}

TEST(a_tree_it_cannot_remove_says_so)
{
    CHECK_EQ(vram__remove_tree("/proc/self/status"), -1);
    CHECK(errno != 0);
}
