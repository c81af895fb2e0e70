/* SPDX-License-Identifier: MIT */
/*
 * tests/wire/test_place.c - where a daemon job's runner puts itself for its
 * job (wire/place.c): the log opened as stdout and stderr, its missing
 * folders made (0700) when asked, none made when not; a log beside the
 * last one is opened with no folder made again.  Each call is made in a
 * child, since it replaces the caller's stdout and stderr.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* vram_job_log_enter(log, make) in a child that then writes "line" to
 * stdout: its return value (or 100 + errno-ish codes when it died). */
static int enter_and_write(const char *log, int make)
{
    pid_t pid = fork();
    if (pid == 0) {
        char path[512];
        snprintf(path, sizeof(path), "%s", log);
        int rc = vram_job_log_enter(path, make);
        if (!rc && (write(STDOUT_FILENO, "line\n", 5) != 5 || strcmp(path, log) != 0))
            rc = 99;                /* nothing written, or the caller's path left changed */
        _exit(rc < 0 ? 100 - rc : rc);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1000;
    int code = WEXITSTATUS(status);
    return code > 100 ? 100 - code : code;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (int)(st.st_mode & 07777);
}

TEST(a_log_in_missing_folders_has_them_made)
{
    char dir[64], log[256], mid[200], leaf[200];
    snprintf(dir, sizeof(dir), "/tmp/vram-place-%d-XXXXXX", (int)getpid());
    CHECK(mkdtemp(dir) != NULL);
    snprintf(mid, sizeof(mid), "%s/a", dir);
    snprintf(leaf, sizeof(leaf), "%s/a/b", dir);
    snprintf(log, sizeof(log), "%s/a/b/1.log", dir);
    /* Not asked to: nothing is made, and the call fails. */
    CHECK(enter_and_write(log, 0) != 0);
    CHECK_EQ(mode_of(mid), -1);
    /* Two folders missing: both made, owner-only, and the line is in the log. */
    CHECK_EQ(enter_and_write(log, 1), 0);
    CHECK_EQ(mode_of(mid), 0700);
    CHECK_EQ(mode_of(leaf), 0700);
    CHECK_EQ(file_size(log), 5);
    /* Beside it, and again: appended, the folders as they were. */
    chmod(leaf, 0750);
    CHECK_EQ(enter_and_write(log, 1), 0);
    CHECK_EQ(file_size(log), 10);
    snprintf(log, sizeof(log), "%s/a/b/2.log", dir);
    CHECK_EQ(enter_and_write(log, 1), 0);
    CHECK_EQ(file_size(log), 5);
    CHECK_EQ(mode_of(leaf), 0750);
    /* A relative path is refused. */
    CHECK(enter_and_write("a/b/3.log", 1) != 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST(a_log_that_is_a_link_is_not_followed)
{
    char dir[64], log[256], target[256];
    snprintf(dir, sizeof(dir), "/tmp/vram-place-%d-XXXXXX", (int)getpid());
    CHECK(mkdtemp(dir) != NULL);
    snprintf(target, sizeof(target), "%s/elsewhere", dir);
    snprintf(log, sizeof(log), "%s/1.log", dir);
    CHECK_EQ(symlink(target, log), 0);
    CHECK(enter_and_write(log, 1) != 0);
    CHECK_EQ(file_size(target), -1);
    unlink(log);
    rmdir(dir);
}
