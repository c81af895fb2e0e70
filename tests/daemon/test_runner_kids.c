/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_runner_kids.c - telling vramd's own runners from
 * impostors without a /proc read at every word (daemon/spawn.c): a runner
 * vramd forked and has not reaped is alive until it ends (a zombie is not),
 * only with its own start time; once reaped, or for a process vramd did
 * not fork, /proc says, as before.  Child processes stand in for runners.
 * The check under it, vram__proc_unreaped_child, is tested here too.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "daemon/daemon.h"
#include "monitor/monitor.h"

static vramd d;

/* A child that waits until its pipe closes, then ends. */
static pid_t stand_in(int *release)
{
    int p[2];
    if (pipe(p))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        char c;
        while (read(p[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(p[0]);
    *release = p[1];
    return pid;
}

/* Blocks until pid has ended, leaving it unreaped (a zombie). */
static bool ended_unreaped(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == pid;
}

TEST(an_unreaped_runner_is_known_by_its_start)
{
    int release;
    pid_t pid = stand_in(&release);
    CHECK(pid > 0);
    vramd_runner_forked(&d, pid);
    vramd_runner_forked(&d, pid);   /* once only */
    CHECK_EQ(d.nkids, (size_t)1);
    uint64_t start = vram__proc_start_ticks((uint32_t)pid);
    CHECK(start != 0);
    CHECK_EQ(vramd_runner_start(&d, (uint32_t)pid), start);
    CHECK(vramd_runner_alive(&d, (uint32_t)pid, start));
    CHECK(vramd_runner_alive(&d, (uint32_t)pid, 0));
    CHECK(!vramd_runner_alive(&d, (uint32_t)pid, start + 1));   /* another process's start */
    /* Ended, not reaped: not alive, though its pid still names it. */
    close(release);
    CHECK(ended_unreaped(pid));
    CHECK(!vramd_runner_alive(&d, (uint32_t)pid, start));
    CHECK_EQ(d.nkids, (size_t)1);
    /* Reaped: forgotten. */
    CHECK_EQ(waitpid(pid, NULL, 0), pid);
    vramd_runner_reaped(&d, pid);
    CHECK_EQ(d.nkids, (size_t)0);
    CHECK(!vramd_runner_alive(&d, (uint32_t)pid, start));
    vramd_runner_kids_free(&d);
}

TEST(a_remembered_pid_no_longer_ours_is_read_from_proc)
{
    /* An entry left for a pid that is not (or no longer) this process's
     * child: its remembered start is not trusted; /proc says. */
    pid_t parent = getppid();
    uint64_t start = vram__proc_start_ticks((uint32_t)parent);
    CHECK(start != 0);
    d.kids = malloc(sizeof(*d.kids));
    CHECK(d.kids != NULL);
    d.kids[0] = (struct vramd_kid){ .pid = parent, .start = start + 7 };
    d.nkids = d.kids_cap = 1;
    CHECK_EQ(vramd_runner_start(&d, (uint32_t)parent), start);
    CHECK(vramd_runner_alive(&d, (uint32_t)parent, start));
    CHECK(!vramd_runner_alive(&d, (uint32_t)parent, start + 7));
    CHECK(!vramd_runner_alive(&d, 0, 0));
    vramd_runner_kids_free(&d);
    CHECK(d.kids == NULL);
}

/* The check both vramd and the runner ask (monitor/proctree.c): a child
 * of ours is known while unreaped, ended or not; once reaped, or a process
 * we did not fork, it is not ours. */
TEST(an_unreaped_child_is_ours_until_reaped)
{
    int release;
    pid_t pid = stand_in(&release);
    CHECK(pid > 0);
    bool exited = true;
    CHECK(vram__proc_unreaped_child((uint32_t)pid, &exited));
    CHECK(!exited);
    close(release);
    CHECK(ended_unreaped(pid));
    CHECK(vram__proc_unreaped_child((uint32_t)pid, &exited));
    CHECK(exited);
    CHECK(vram__proc_unreaped_child((uint32_t)pid, NULL));     /* asking did not reap it */
    CHECK_EQ(waitpid(pid, NULL, 0), pid);
    CHECK(!vram__proc_unreaped_child((uint32_t)pid, &exited));
    CHECK(!vram__proc_unreaped_child((uint32_t)getppid(), &exited));
    CHECK(!vram__proc_unreaped_child(0, &exited));
}
