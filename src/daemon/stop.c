/* SPDX-License-Identifier: MIT */
/*
 * daemon/stop.c - the processes of a job whose runner is gone.
 *
 * A job's runner stops what the job started (runner/contain.c).  When the
 * runner died and the job's processes run on (an orphan, jobs.c), a cancel
 * or the job's time limit must still stop them, and vramd must know when
 * they are all gone.  Owns finding them, from what the daemon may trust:
 *   - the job's cgroup, where its runner made one: a folder
 *     vram-job-<runner pid>-<n> beside the runner in vramd's own cgroup
 *     (v2); nothing in it can have left it;
 *   - else every process of the user the job runs as (never another's)
 *     that started after its runner did and is in the job's process group
 *     (recorded when the runner started it, checked as the runner's child's
 *     group: authz.c) or carries the job's mark in its environment
 *     (VRAMD_JOB=<id>.<runner pid>.<runner start>, set by its runner: a
 *     child that called setsid has it; no other daemon's job has it).  A user can fake the mark only on processes of their own, and
 *     only their own job's cancel stops them.
 * Also the empty cgroups a runner leaves when it dies between jobs (it
 * keeps its last one for its next job): removed when vramd reaps it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "monitor/monitor.h"

/* Signals (sig 0: counts) the processes of the job's cgroups; with
 * SIGKILL, cgroup.kill has the last word. */
static size_t cgroup_signal(const vramd *d, const vramd_job *j, int sig)
{
    /* The runner's pid, taken again by a live runner: those folders are its. */
    for (size_t i = 0; i < d->nlive; i++)
        if (d->live[i] != j && d->live[i]->row.runner_pid == j->row.runner_pid &&
            vram__proc_alive(d->live[i]->row.runner_pid, d->live[i]->row.runner_start))
            return 0;
    /* Alive with another start time: another runner's (another vramd's) pid. */
    uint64_t now_start = vram__proc_start_ticks(j->row.runner_pid);
    if (now_start && now_start != j->row.runner_start)
        return 0;
    char base[2100], prefix[48];
    vram__cgroup_self(base, sizeof(base));   /* vramd's own */
    DIR *dir = *base ? opendir(base) : NULL;
    if (!dir)
        return 0;
    size_t hit = 0;
    int plen = snprintf(prefix, sizeof(prefix), "vram-job-%u-", (unsigned)j->row.runner_pid);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, prefix, (size_t)plen))
            continue;
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s/cgroup.procs", base, e->d_name);
        FILE *f = fopen(path, "re");
        long pid;
        size_t here = 0;
        while (f && fscanf(f, "%ld", &pid) == 1)
            here += pid > 1 && (sig == 0 ? kill((pid_t)pid, 0) == 0 || errno == EPERM : kill((pid_t)pid, sig) == 0);
        hit += here;
        if (f)
            fclose(f);
        if (sig == SIGKILL) {
            snprintf(path, sizeof(path), "%s/%s/cgroup.kill", base, e->d_name);
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                ssize_t w = write(fd, "1", 1);
                (void)w;
                close(fd);
            }
        }
        if (sig == 0 && !here) {     /* empty: the runner that made it is gone, so is it */
            snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
            rmdir(path);
        }
    }
    closedir(dir);
    return hit;
}

/* Whether pid's environment holds exactly `mark` (NAME=VALUE). */
#define ENVIRON_READ (1 << 16)       /* a mark past this much environment is not found */

static bool has_mark(const char *pid, const char *mark, char *buf)
{
    char path[300];
    snprintf(path, sizeof(path), "/proc/%s/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, ENVIRON_READ - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    size_t len = strlen(mark);
    for (const char *s = buf; s < buf + n; s += strlen(s) + 1)
        if (!strncmp(s, mark, len) && s[len] == '\0')
            return true;
    return false;
}

size_t vramd_job_signal_orphan(const vramd *d, const vramd_job *j, int sig)
{
    if (!j->row.runner_pid)
        return 0;
    size_t hit = cgroup_signal(d, j, sig);
    uid_t as = geteuid() == 0 ? (uid_t)j->row.owner_uid : geteuid();   /* who the job runs as */
    char mark[80];
    snprintf(mark, sizeof(mark), "VRAMD_JOB=%llu.%u.%llu", (unsigned long long)j->row.id,
             (unsigned)j->row.runner_pid, (unsigned long long)j->row.runner_start);
    char *buf = malloc(ENVIRON_READ);   /* the loop's, or the dashboard's thread's cancel */
    DIR *proc = buf ? opendir("/proc") : NULL;
    struct dirent *e;
    while (proc && (e = readdir(proc))) {
        char *end;
        unsigned long pid = strtoul(e->d_name, &end, 10);
        struct stat st;
        char path[64];
        if (*end || pid <= 1 || pid == (unsigned long)getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%lu", pid);
        if (stat(path, &st) != 0 || st.st_uid != as)
            continue;
        uint64_t since = vram__proc_start_ticks((uint32_t)pid);
        if (!since || since < j->row.runner_start)
            continue;
        bool in_group = j->row.job_pgid && vram__proc_pgrp((uint32_t)pid) == j->row.job_pgid;
        if (!in_group && !has_mark(e->d_name, mark, buf))
            continue;
        hit += sig == 0 ? kill((pid_t)pid, 0) == 0 : kill((pid_t)pid, sig) == 0;
    }
    if (proc)
        closedir(proc);
    free(buf);
    return hit;
}

void vramd_runner_cgroups_tidy(pid_t runner)
{
    static char base[2100];
    static bool looked;
    if (!looked) {                  /* vramd's own cgroup, where its runners make theirs */
        vram__cgroup_self(base, sizeof(base));
        looked = true;
    }
    DIR *dir = *base && runner >= 0 ? opendir(base) : NULL;
    if (!dir)
        return;
    char prefix[48];
    int plen = snprintf(prefix, sizeof(prefix), "vram-job-%u-", (unsigned)runner);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (runner == 0) {          /* any runner's that is gone (one killed while no vramd was there) */
            unsigned long pid = 0;
            if (strncmp(e->d_name, "vram-job-", 9) || sscanf(e->d_name + 9, "%lu-", &pid) != 1 || !pid ||
                !(kill((pid_t)pid, 0) != 0 && errno == ESRCH))
                continue;
        } else if (strncmp(e->d_name, prefix, (size_t)plen)) {
            continue;
        }
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
        rmdir(path);                /* only an empty one goes: a job's orphans keep theirs */
    }
    closedir(dir);
}
