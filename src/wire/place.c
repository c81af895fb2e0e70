/* SPDX-License-Identifier: MIT */
/*
 * wire/place.c - where a daemon job's runner puts itself for its job: the
 * job's log as its stdout and stderr, the job's --output over it, no end
 * file left by an earlier job of that number, the job's folder.
 *
 * Two runners do it: the one vramd forks (daemon/spawn.c, between fork and
 * exec, as the job's user) and a reused runner moving to its next job
 * (cli/cmd_run.c).  System calls only: no allocation, no stdio buffer, no
 * error text kept (vram__fail allocates), so a forked child of a threaded
 * vramd may call it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/exports.h"

int vram_job_log_enter(char *log, int make_folders)
{
    if (!log || *log != '/')
        return VRAM_EINVAL;
    /* Its folders are made only when the open finds one missing: a reused
     * runner's next log is nearly always beside its last one. */
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool missing = fd < 0 && errno == ENOENT && make_folders;
    for (char *p = log + 1; missing && *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(log, 0700);       /* one there already is fine; the open below says */
            *p = '/';
        }
    if (missing)
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return VRAM_EIO;
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
    return 0;
}

int vram_job_place_enter(const char *end_file, const char *output, const char *cwd, const char *who)
{
    if (end_file && *end_file)
        unlink(end_file);
    if (output && *output) {        /* opened as the job's user, never as vramd's */
        int o = open(output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
        if (o >= 0) {
            dup2(o, STDOUT_FILENO);
            dup2(o, STDERR_FILENO);
            if (o > STDERR_FILENO)
                close(o);
        } else {
            dprintf(STDERR_FILENO, "%s: cannot write the job's --output file: %s; its output stays in this log\n",
                    who, strerror(errno));
        }
    }
    if (!cwd || chdir(cwd) != 0) {
        dprintf(STDERR_FILENO, "%s: cannot enter %s: %s\n", who, cwd ? cwd : "(none)", strerror(errno));
        return VRAM_EIO;
    }
    return 0;
}
