/* SPDX-License-Identifier: MIT */
/*
 * runner/child.c - starts a job's command and follows it to the end.
 *
 * The command runs in its own process group, so that the whole job - the
 * script and every worker it forks, even one whose parent has exited - can
 * be measured and signalled as one.  Its stderr passes through a pipe: each
 * byte goes on to our stderr at once, and the last 64 KiB are kept for the
 * out-of-memory parser.  A command that cannot be executed is reported as
 * such (errno through a close-on-exec pipe, or memory shared with a child
 * started vfork's way), not as a job that failed.  Its
 * end is learnt at once from a pidfd polled with its stderr, not at the
 * next sample: the next job waits for this one's end to be noticed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>
#include <stdint.h>
#include <pthread.h>

#include "runner/runner.h"

extern char **environ;

/* In the child: never returns. */
static void exec_child(char *const argv[], char *const envp[], int err_w, int gate_w, bool in_cgroup)
{
    setpgid(0, 0);
    if (!in_cgroup)
        vram__contain_enter();
    if (err_w >= 0) {
        dup2(err_w, STDERR_FILENO);
        close(err_w);
    }
    signal(SIGPIPE, SIG_DFL);
    execvpe(argv[0], argv, envp ? envp : environ);
    int e = errno;
    ssize_t w = write(gate_w, &e, sizeof(e));
    (void)w;
    _exit(127);
}

/* ---- the command started in our memory (vfork's way) -------------------------- */

/* On x86-64 Linux, outside sanitizer builds, the command is cloned with
 * CLONE_VM | CLONE_VFORK straight into its cgroup, its handlers cleared by
 * the kernel: no copy of the runner's page tables, no copy-on-write fault
 * on either side before the exec (what posix_spawn does, which cannot put
 * a child in a cgroup).  The child runs on a stack in this frame while we
 * wait, makes only system calls, and leaves its exec's error in memory we
 * share.  Elsewhere: fork's way, below. */
#if defined(__x86_64__) && defined(__linux__) && defined(SYS_clone3) && defined(CLONE_INTO_CGROUP) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define SHARED_START 1
#define SHARED_ARGV_MAX 1024            /* 8 KiB of argv copy at most on the child's 48 KiB */
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

typedef struct shared_child {
    char *const *argv, *const *envp;
    int err_w;
    sigset_t mask;                  /* the runner's, restored just before the exec */
    volatile int exec_errno;        /* set by the child when its exec failed */
} shared_child;

/* In the child, on its own stack: never returns. */
__attribute__((noinline, used)) static void shared_child_run(shared_child *s)
{
    setpgid(0, 0);
    if (s->err_w >= 0 && s->err_w != STDERR_FILENO) {
        dup2(s->err_w, STDERR_FILENO);
        close(s->err_w);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;       /* an ignored SIGPIPE (the runner's) is not the job's */
    sigaction(SIGPIPE, &dfl, NULL);
    sigprocmask(SIG_SETMASK, &s->mask, NULL);
    execvpe(s->argv[0], s->argv, s->envp ? s->envp : environ);
    s->exec_errno = errno ? errno : ENOEXEC;
    syscall(SYS_exit, 127);
    for (;;)
        ;
}

/* clone3 with fn(arg) in the child, on the stack args gives. */
static long clone3_call(struct clone_args *args, void (*fn)(shared_child *), shared_child *arg)
{
    long ret;
    register void *r8 __asm__("r8") = (void *)fn;
    register void *r9 __asm__("r9") = arg;
    __asm__ volatile("syscall\n\t"
                     "testq %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xorl %%ebp, %%ebp\n\t"
                     "movq %%r9, %%rdi\n\t"
                     "callq *%%r8\n\t"
                     "movl $60, %%eax\n\t"
                     "movl $127, %%edi\n\t"
                     "syscall\n\t"
                     "hlt\n"
                     "1:\n\t"
                     : "=a"(ret)
                     : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory", "cc");
    return ret;
}

/* The child's pid once it has exec'd or failed to (*exec_errno), or -1
 * when this way is not to be had (the caller forks instead). */
static pid_t start_shared(int cg, char *const argv[], char *const envp[], int err_w, int *exec_errno)
{
    if (cg < 0)
        return -1;
    /* execvpe's own stack use: a path of PATH_MAX and, for a script with no
     * #! line, a copy of argv (a VLA: argc + 2 pointers).  A long argv goes
     * fork's way rather than past the end of this stack into ours. */
    size_t argc = 0;
    while (argv[argc] && argc <= SHARED_ARGV_MAX)
        argc++;
    if (argc > SHARED_ARGV_MAX)
        return -1;
    _Alignas(16) char stack[48 * 1024];  /* the child's while we wait (CLONE_VFORK) */
    shared_child s = { .argv = argv, .envp = envp, .err_w = err_w, .exec_errno = 0 };
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &s.mask);
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP | CLONE_CLEAR_SIGHAND;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cg;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = sizeof(stack);
    int saved = errno;
    long pid = clone3_call(&args, shared_child_run, &s);
    pthread_sigmask(SIG_SETMASK, &s.mask, NULL);
    if (pid < 0) {
        errno = saved;
        return -1;
    }
    *exec_errno = s.exec_errno;
    errno = saved;
    return (pid_t)pid;
}
#endif

/* A pidfd for our child pid (close-on-exec, as pidfd_open makes them), or
 * -1 where the kernel has none. */
static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

/* Both ways of starting end here: the child pid has exec'd (exec_errno 0:
 * c is it, its stderr read from err_r) or failed to (reaped, its cgroup
 * let go, and why said). */
static int began(vram__child *c, pid_t pid, bool in_cgroup, int exec_errno, int err_r, const char *name)
{
    vram__contain_started(pid, in_cgroup);
    if (exec_errno) {
        waitpid(pid, NULL, 0);
        vram__contain_end(pid);
        if (err_r >= 0)
            close(err_r);
        char shown[512];            /* the user's command: escaped, as it reaches logs and terminals */
        return vram__fail(exec_errno == ENOENT ? VRAM_ENOENT : exec_errno == EACCES ? VRAM_EPERM : VRAM_EIO,
                          "cannot run '%s': %s", vram_text_escape(name, shown, sizeof(shown)),
                          strerror(exec_errno));
    }
    c->pid = pid;
    c->err_fd = err_r;
    c->pid_fd = open_pidfd(pid);
    return 0;
}

void vram__child_reset(vram__child *c)
{
    memset(c, 0, offsetof(vram__child, tail));
    c->err_fd = -1;
    c->pid_fd = -1;
}

int vram__child_start(char *const argv[], char *const envp[], bool capture_stderr, vram__child *c)
{
    vram__child_reset(c);
    if (!argv || !argv[0] || !*argv[0])
        return vram__fail(VRAM_EINVAL, "no command to run");
    int gate[2], err[2] = { -1, -1 };
    if (capture_stderr && pipe2(err, O_CLOEXEC) != 0)
        return vram__fail(VRAM_EIO, "cannot make a pipe: %s", strerror(errno));
    vram__contain_prepare();
    int cg = vram__contain_make();
#ifdef SHARED_START
    int exec_errno = 0;
    pid_t shared = start_shared(cg, argv, envp, err[1], &exec_errno);
    if (shared > 0) {
        close(cg);
        if (capture_stderr)
            close(err[1]);
        return began(c, shared, true, exec_errno, capture_stderr ? err[0] : -1, argv[0]);
    }
#endif
    if (pipe2(gate, O_CLOEXEC) != 0) {
        int e = errno;
        if (capture_stderr) {
            close(err[0]);
            close(err[1]);
        }
        if (cg >= 0)
            close(cg);
        return vram__fail(VRAM_EIO, "cannot make a pipe: %s", strerror(e));
    }
    bool in_cgroup;
    pid_t pid = vram__fork_clean_into(cg, &in_cgroup);
    if (pid < 0) {
        int e = errno;
        close(gate[0]);
        close(gate[1]);
        if (capture_stderr) {
            close(err[0]);
            close(err[1]);
        }
        if (cg >= 0)
            close(cg);
        return vram__fail(VRAM_EAGAIN, "cannot start '%s': %s", argv[0], strerror(e));
    }
    if (pid == 0) {
        close(gate[0]);
        if (capture_stderr)
            close(err[0]);
        exec_child(argv, envp, err[1], gate[1], in_cgroup);
    }
    if (cg >= 0)
        close(cg);
    setpgid(pid, pid);              /* both sides, so no race with a fast exec */
    close(gate[1]);
    if (capture_stderr)
        close(err[1]);
    int e = 0;
    ssize_t got;
    while ((got = read(gate[0], &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    close(gate[0]);
    return began(c, pid, in_cgroup, got == (ssize_t)sizeof(e) ? e : 0, capture_stderr ? err[0] : -1, argv[0]);
}

/* Keeps the last VRAM__TAIL_BYTES of what the child wrote. */
static void keep_tail(vram__child *c, const char *data, size_t n)
{
    if (n > VRAM__TAIL_BYTES) {
        data += n - VRAM__TAIL_BYTES;
        n = VRAM__TAIL_BYTES;
    }
    if (c->tail_len + n > VRAM__TAIL_BYTES) {
        size_t drop = c->tail_len + n - VRAM__TAIL_BYTES;
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
    }
    memcpy(c->tail + c->tail_len, data, n);
    c->tail_len += n;
}

static void pass_on(const char *data, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(STDERR_FILENO, data + off, n - off);
        if (w <= 0)
            return;                 /* our stderr is gone: keep reading theirs */
        off += (size_t)w;
    }
}

/* Passes the child's stderr on in whole lines (ended by a newline, or a
 * carriage return as progress bars end theirs), so that, in a log shared
 * with its stdout, a line of one is never cut by a line of the other.  A
 * line longer than c->held goes on in pieces. */
static void pass_on_lines(vram__child *c, const char *data, size_t n)
{
    size_t end = n;
    while (end > 0 && data[end - 1] != '\n' && data[end - 1] != '\r')
        end--;
    if (end == 0 && c->held_len + n <= sizeof(c->held)) {
        memcpy(c->held + c->held_len, data, n);
        c->held_len += n;
        return;
    }
    if (end == 0)
        end = n;                    /* no end in sight: let it all go */
    pass_on(c->held, c->held_len);
    pass_on(data, end);
    c->held_len = 0;
    size_t rest = n - end;
    if (rest > sizeof(c->held)) {
        pass_on(data + end, rest);
        rest = 0;
    }
    memcpy(c->held, data + end, rest);
    c->held_len = rest;
}

/* Reads what stderr has (poll said it is readable); closes it at its end. */
static void take_stderr(vram__child *c)
{
    char buf[8192];
    ssize_t n = read(c->err_fd, buf, sizeof(buf));
    if (n > 0) {
        keep_tail(c, buf, (size_t)n);
        pass_on_lines(c, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    pass_on(c->held, c->held_len);  /* its last line, ended or not */
    c->held_len = 0;
    close(c->err_fd);
    c->err_fd = -1;
}

int vram__child_pump(vram__child *c, int timeout_ms)
{
    if (c->err_fd < 0) {
        if (timeout_ms > 0)
            vram__sleep_ms((unsigned)timeout_ms);
        return 1;
    }
    struct pollfd p = { c->err_fd, POLLIN, 0 };
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    take_stderr(c);
    return c->err_fd < 0;
}

bool vram__child_wait(vram__child *c, int timeout_ms)
{
    struct pollfd p[2];
    nfds_t n = 0;
    int err_at = -1;
    if (c->err_fd >= 0) {
        err_at = (int)n;
        p[n++] = (struct pollfd){ c->err_fd, POLLIN, 0 };
    }
    /* Once reaped, its pidfd stays readable: polled no more. */
    if (c->pid_fd >= 0 && !c->exited)
        p[n++] = (struct pollfd){ c->pid_fd, POLLIN, 0 };
    if (n == 0) {
        if (timeout_ms > 0)
            vram__sleep_ms((unsigned)timeout_ms);
        return vram__child_exited(c);
    }
    if (poll(p, n, timeout_ms) > 0 && err_at >= 0 && p[err_at].revents)
        take_stderr(c);
    return vram__child_exited(c);
}

bool vram__child_exited(vram__child *c)
{
    int status;
    pid_t r;
    if (!c->exited && waitpid(c->pid, &status, WNOHANG) == c->pid) {
        c->exited = true;
        c->status = status;
    }
    /* Orphans re-parented to us (we are a subreaper) are reaped here too,
     * also after the child itself has exited: a zombie would keep its group
     * alive.  The child may exit between the two waits; its status is kept. */
    while ((r = waitpid(-1, &status, WNOHANG)) > 0)
        if (r == c->pid && !c->exited) {
            c->exited = true;
            c->status = status;
        }
    return c->exited;
}

/* The job's group, and whatever left it (contain.c). */
bool vram__child_group_alive(const vram__child *c)
{
    return kill(-c->pid, 0) == 0 || errno == EPERM || vram__contain_alive(c->pid);
}

void vram__child_signal(const vram__child *c, int sig)
{
    if (c->pid > 0)
        vram__contain_signal(c->pid, sig);
}

void vram__child_close(vram__child *c)
{
    vram__contain_end(c->pid);
    pass_on(c->held, c->held_len);
    c->held_len = 0;
    if (c->err_fd >= 0)
        close(c->err_fd);
    c->err_fd = -1;
    if (c->pid_fd >= 0)
        close(c->pid_fd);
    c->pid_fd = -1;
}

int vram__child_exit_code(const vram__child *c)
{
    if (WIFEXITED(c->status))
        return WEXITSTATUS(c->status);
    if (WIFSIGNALED(c->status))
        return 128 + WTERMSIG(c->status);
    return 1;
}

/* ---- timeline ------------------------------------------------------------------ */

void vram__timeline_reset(vram__timeline *tl)
{
    memset(tl, 0, offsetof(vram__timeline, pts));
    tl->stride = 1;
}

void vram__timeline_add(vram__timeline *tl, uint64_t t_ms, uint64_t bytes)
{
    if (bytes > tl->peak)
        tl->peak = bytes;
    if (tl->n == VRAM__TIMELINE_POINTS) {
        /* Halve the resolution, keeping each pair's larger value. */
        for (size_t i = 0; i < tl->n / 2; i++) {
            vram_point a = tl->pts[2 * i], b = tl->pts[2 * i + 1];
            tl->pts[i] = (vram_point){ a.t_ms, a.bytes > b.bytes ? a.bytes : b.bytes };
        }
        tl->n /= 2;
        tl->stride *= 2;
    }
    if (tl->pending == 0 || bytes > tl->pending_bytes)
        tl->pending_bytes = bytes;
    if (tl->pending == 0)
        tl->pending_t = t_ms;
    if (++tl->pending >= (tl->stride ? tl->stride : 1)) {
        tl->pts[tl->n++] = (vram_point){ tl->pending_t, tl->pending_bytes };
        tl->pending = 0;
    }
}

void vram__timeline_flush(vram__timeline *tl)
{
    if (tl->pending && tl->n < VRAM__TIMELINE_POINTS)
        tl->pts[tl->n++] = (vram_point){ tl->pending_t, tl->pending_bytes };
    tl->pending = 0;
}
