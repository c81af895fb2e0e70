/* SPDX-License-Identifier: MIT */
/*
 * tests/runner/test_child.c - starting a job's command, its stderr, its
 * process group, and the peak-keeping timeline.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "runner/runner.h"

static int run_to_end(vram__child *c)
{
    while (!vram__child_pump(c, 50))
        ;
    while (!vram__child_exited(c))
        usleep(1000);
    return vram__child_exit_code(c);
}

TEST(exit_status_and_stderr_tail)
{
    static vram__child c;
    char *argv[] = { "sh", "-c", "echo to-stderr-1 >&2; echo to-stderr-2 >&2; exit 3", NULL };
    CHECK_OK(vram__child_start(argv, NULL, true, &c));
    CHECK_EQ(run_to_end(&c), 3);
    CHECK(c.tail_len > 0);
    c.tail[c.tail_len < sizeof(c.tail) ? c.tail_len : sizeof(c.tail) - 1] = '\0';
    CHECK_CONTAINS(c.tail, "to-stderr-1\nto-stderr-2\n");
    vram__child_close(&c);
}

TEST(stderr_goes_on_in_whole_lines)
{
    /* A job's stdout and the stderr the runner passes on share one log: a
     * stderr line begun before a stdout line must not be cut by it. */
    char log[64], cmd[512];
    snprintf(log, sizeof(log), "/tmp/vram-child-log-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "printf 'progress 1' >&2; sleep 0.3; echo OUT >>%s; printf ' of 2\\r' >&2; "
             "printf 'done' >&2", log);
    char *argv[] = { "sh", "-c", cmd, NULL };
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    CHECK(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    static vram__child c;
    int rc = vram__child_start(argv, NULL, true, &c);
    int status = rc ? -1 : run_to_end(&c);
    vram__child_close(&c);
    dup2(saved, STDERR_FILENO);
    close(saved);
    CHECK_OK(rc);
    CHECK_EQ(status, 0);
    char got[256] = "";
    FILE *f = fopen(log, "r");
    CHECK(f);
    if (f) {
        size_t n = fread(got, 1, sizeof(got) - 1, f);
        got[n] = '\0';
        fclose(f);
    }
    unlink(log);
    CHECK_STR_EQ(got, "OUT\nprogress 1 of 2\rdone");   /* the unended last line too */
}

TEST(only_the_last_64k_are_kept)
{
    static vram__child c;
    char *argv[] = { "sh", "-c", "head -c 200000 /dev/zero | tr '\\0' a >&2; echo END >&2", NULL };
    /* What passes through would fill the test's log: send it nowhere. */
    int saved = dup(STDERR_FILENO), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDERR_FILENO);
    close(devnull);
    CHECK_OK(vram__child_start(argv, NULL, true, &c));
    int status = run_to_end(&c);
    dup2(saved, STDERR_FILENO);
    close(saved);
    CHECK_EQ(status, 0);
    CHECK_EQ(c.tail_len, VRAM__TAIL_BYTES);
    CHECK(!memcmp(c.tail + c.tail_len - 4, "END\n", 4));
    vram__child_close(&c);
}

TEST(commands_that_cannot_run)
{
    static vram__child c;
    char *missing[] = { "no-such-program-vram", NULL };
    CHECK_ERR(vram__child_start(missing, NULL, true, &c), VRAM_ENOENT);
    CHECK_CONTAINS(vram_last_error(), "cannot run 'no-such-program-vram'");
    char *empty[] = { "", NULL };
    CHECK_ERR(vram__child_start(empty, NULL, true, &c), VRAM_EINVAL);
    char *dir[] = { "/tmp", NULL };
    CHECK_ERR(vram__child_start(dir, NULL, true, &c), VRAM_EPERM);
}

/* A script with no #! line is run by sh, as execvp does (ENOEXEC), with
 * all its arguments: execvpe copies argv on its stack for that, and with
 * 20,000 of them (160 KiB) the command must not start on a stack that
 * small (child.c, start_shared: such an argv goes fork's way). */
TEST(a_script_without_interpreter_gets_a_long_argv)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/vram-child-script-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    CHECK(f);
    if (!f)
        return;
    fputs("echo \"args=$# last=$(eval echo \\${$#})\" >&2\n", f);
    fclose(f);
    chmod(path, 0700);
    enum { N = 20000 };
    static char *argv[N + 2];
    static char words[N][8];
    argv[0] = path;
    for (int i = 0; i < N; i++) {
        snprintf(words[i], sizeof(words[i]), "a%d", i);
        argv[i + 1] = words[i];
    }
    argv[N + 1] = NULL;
    char *small[] = { path, "x", "y", NULL };
    for (int round = 0; round < 2; round++) {
        static vram__child c;
        CHECK_OK(vram__child_start(round ? argv : small, NULL, true, &c));
        CHECK_EQ(run_to_end(&c), 0);
        c.tail[c.tail_len < sizeof(c.tail) ? c.tail_len : sizeof(c.tail) - 1] = '\0';
        CHECK_CONTAINS(c.tail, round ? "args=20000 last=a19999" : "args=2 last=y");
        vram__child_close(&c);
    }
    unlink(path);
}

TEST(grandchildren_keep_the_group_alive_and_signals_reach_them)
{
    static vram__child c;
    /* As the runner's callers do: orphans come to us and are reaped by
     * vram__child_exited, instead of lingering as zombies in the group
     * until PID 1 (in some containers, slow to reap) gets to them. */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
    char *argv[] = { "sh", "-c", "sleep 0.4 & exit 0", NULL };
    CHECK_OK(vram__child_start(argv, NULL, false, &c));
    while (!vram__child_exited(&c))
        usleep(1000);
    CHECK_EQ(vram__child_exit_code(&c), 0);
    CHECK(vram__child_group_alive(&c));           /* the sleep lives on in the group */
    for (int i = 0; i < 200 && vram__child_group_alive(&c); i++) {
        vram__child_exited(&c);                   /* reaps it if it is ours */
        usleep(10000);
    }
    CHECK(!vram__child_group_alive(&c));

    char *sleeper[] = { "sleep", "30", NULL };
    CHECK_OK(vram__child_start(sleeper, NULL, false, &c));
    vram__child_signal(&c, SIGTERM);
    while (!vram__child_exited(&c))
        usleep(1000);
    CHECK_EQ(vram__child_exit_code(&c), 128 + SIGTERM);
}

TEST(the_end_is_noticed_while_a_grandchild_keeps_stderr_open)
{
    /* The command exits at once; a worker it left behind keeps its stderr
     * open and writes a line 3 s later.  The wait must wake on the end (the
     * pidfd), before that line: not on stderr's end nor on the next output. */
    static vram__child c;
    char *argv[] = { "sh", "-c", "(sleep 3; echo late-line >&2) & exit 0", NULL };
    CHECK_OK(vram__child_start(argv, NULL, true, &c));
    CHECK(c.pid_fd >= 0);
    bool ended = vram__child_wait(&c, 20000);
    CHECK(ended);
    CHECK(c.err_fd >= 0);           /* stderr is still open: the end woke it */
    CHECK(memmem(c.tail, c.tail_len, "late-line", 9) == NULL);
    CHECK_EQ(vram__child_exit_code(&c), 0);
    vram__child_signal(&c, SIGKILL);
    vram__child_close(&c);
}

TEST(environment_is_what_we_give)
{
    static vram__child c;
    char *argv[] = { "sh", "-c", "echo \"[$VRAM_LEASE]\" >&2; [ -z \"$HOME\" ]", NULL };
    char *envp[] = { "VRAM_LEASE=lease-7", "PATH=/usr/bin:/bin", NULL };
    CHECK_OK(vram__child_start(argv, envp, true, &c));
    CHECK_EQ(run_to_end(&c), 0);
    c.tail[c.tail_len] = '\0';
    CHECK_CONTAINS(c.tail, "[lease-7]");
    vram__child_close(&c);
}

TEST(timeline_keeps_the_peak_in_fixed_space)
{
    static vram__timeline tl;
    memset(&tl, 0, sizeof(tl));
    for (uint64_t i = 0; i < 100000; i++)
        vram__timeline_add(&tl, i * 10, i == 55555 ? 9000 : i % 100);
    vram__timeline_flush(&tl);
    CHECK(tl.n <= VRAM__TIMELINE_POINTS && tl.n > VRAM__TIMELINE_POINTS / 4);
    CHECK_EQ_U64(tl.peak, 9000);
    uint64_t max = 0;
    for (size_t i = 0; i < tl.n; i++) {
        if (tl.pts[i].bytes > max)
            max = tl.pts[i].bytes;
        if (i)
            CHECK(tl.pts[i].t_ms > tl.pts[i - 1].t_ms);
    }
    CHECK_EQ_U64(max, 9000);
}
