/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_fork.c - vram__fork_clean: a signal that reaches the child
 * before its exec runs no handler of the parent's (vramd's SIGTERM handler,
 * run in a runner not yet exec'd, told the daemon itself to stop).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "test.h"

static int told[2];

static void on_term(int sig)
{
    (void)sig;
    char b = 's';
    ssize_t w = write(told[1], &b, 1);
    (void)w;
}

/* Forks with `clean` or plain fork; the child is sent SIGTERM as a cancel
 * would reach it before its exec.  Its wait status. */
static int signalled_child(bool clean)
{
    pid_t pid = clean ? vram__fork_clean() : fork();
    if (pid == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    int status = -1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return status;
}

static bool handler_ran(void)
{
    char b;
    return read(told[0], &b, 1) == 1;
}

TEST(a_signal_before_exec_takes_the_default_action)
{
    CHECK(pipe2(told, O_NONBLOCK) == 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGTERM, &sa, &old) == 0);

    int status = signalled_child(true);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %#x", status);
    CHECK_MSG(!handler_ran(), "the parent's handler ran in the child");

    /* What plain fork does, for contrast: the handler runs, the child lives on. */
    status = signalled_child(false);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
    CHECK(handler_ran());

    /* The parent keeps its handler and its mask. */
    struct sigaction now;
    CHECK(sigaction(SIGTERM, NULL, &now) == 0);
    CHECK(now.sa_handler == on_term);
    sigset_t mask;
    CHECK(pthread_sigmask(SIG_SETMASK, NULL, &mask) == 0);
    CHECK(!sigismember(&mask, SIGTERM));

    sigaction(SIGTERM, &old, NULL);
    close(told[0]);
    close(told[1]);
}

TEST(ignored_signals_stay_ignored_and_the_mask_is_kept)
{
    struct sigaction ign, old;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    CHECK(sigaction(SIGPIPE, &ign, &old) == 0);
    sigset_t usr1, before;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, &before) == 0);
    pid_t pid = vram__fork_clean();
    if (pid == 0) {
        struct sigaction now;
        sigset_t mask;
        sigaction(SIGPIPE, NULL, &now);
        pthread_sigmask(SIG_SETMASK, NULL, &mask);
        _exit(now.sa_handler == SIG_IGN && sigismember(&mask, SIGUSR1) && !sigismember(&mask, SIGTERM) ? 0 : 1);
    }
    CHECK(pid > 0);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    sigaction(SIGPIPE, &old, NULL);
}
