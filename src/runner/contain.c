/* SPDX-License-Identifier: MIT */
/*
 * runner/contain.c - every process a job starts, found and stopped.
 *
 * Owns the job's container.  Where the machine allows, each job's command
 * runs in a cgroup (v2) of its own, made under this process's cgroup (a
 * delegated subtree: root, or a systemd unit with Delegate=yes): nothing a
 * job forks can leave it, not by setsid, setpgid or a double fork, so
 * "alive" is "the cgroup has a process" and a stop reaches them all
 * (cgroup.kill for the last word).  Elsewhere the job is its process group
 * plus every descendant of this process (a child subreaper: orphans come
 * back to it) that started after the job did: a child that called setsid
 * is still found.  The job's cgroup is made before its command starts,
 * <our cgroup>/vram-job-<our pid>-<n>, and the command is cloned straight
 * into it (clone3's CLONE_INTO_CGROUP): moving a running process into a
 * cgroup waits for an RCU grace period, 12 to 20 ms on a quiet machine,
 * which every job's start would pay.  Where clone3 cannot, the command
 * joins <our cgroup>/vram-job-<its pid> itself, between fork and exec.
 * Once a job's processes are all gone its cgroup is kept, empty, for the
 * next command of this process (a reused runner's next job), so that a
 * job costs no mkdir and rmdir of a cgroup.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "runner/runner.h"

static char base[4096];             /* our cgroup's folder, "" when there is no cgroup v2 */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* When each running job's command started (clock ticks since boot), for
 * the fallback: a process of ours that started before the job is not the
 * job's (a program calling vram_job_run may have children of its own). */
static struct { pid_t leader; uint64_t since; char cg[48]; bool killed; } started[32];
static char next_cg[48];            /* made for the next command (vram__contain_make) */
/* An empty cgroup of ours kept for the next command: an ended job's, so
 * that a job's start and end pay no mkdir and rmdir (runner reuse runs
 * many jobs in a row).  Removed at
 * exit; a runner killed meanwhile leaves it to vramd, which removes the
 * empty cgroups of the runners it reaps. */
static char spare_cg[48];
/* The spare had cgroup.kill written: never reused, only removed.  A
 * process cloned into a cgroup killed once before can be SIGKILLed at its
 * start (seen on Linux 6.18, likely the kill sequence a CLONE_INTO_CGROUP
 * child is checked against): test_child's next command died so, one run
 * in three. */
static bool spare_killed;
static unsigned long next_n;
static pthread_mutex_t started_lock = PTHREAD_MUTEX_INITIALIZER;

/* A job started into a cgroup of its own is its cgroup's processes: its
 * start is wanted only should that cgroup be lost, and read then, not at
 * every start (a reused runner starts many). */
#define SINCE_UNREAD UINT64_MAX

static uint64_t since_of(pid_t leader)
{
    uint64_t since = 0;
    pthread_mutex_lock(&started_lock);
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
        if (started[i].leader == leader)
            since = started[i].since;
    pthread_mutex_unlock(&started_lock);
    if (since == SINCE_UNREAD)      /* read while its pid names it alone: our child, not reaped */
        since = vram__proc_unreaped_child((uint32_t)leader, NULL) ? vram__proc_start_ticks((uint32_t)leader) : 0;
    return since;
}

void vram__contain_started(pid_t leader, bool in_made)
{
    uint64_t since = in_made ? SINCE_UNREAD : vram__proc_start_ticks((uint32_t)leader);
    pthread_mutex_lock(&started_lock);
    size_t slot = 0;
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
        if (started[i].leader == 0 || started[i].leader == leader) {
            slot = i;
            break;
        }
    started[slot].leader = leader;
    started[slot].since = since;
    started[slot].killed = false;
    vram__strlcpy(started[slot].cg, in_made ? next_cg : "", sizeof(started[slot].cg));
    pthread_mutex_unlock(&started_lock);
    if (!in_made && *next_cg) {     /* the command was forked, not cloned into it */
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", base, next_cg);
        rmdir(path);
    }
    next_cg[0] = '\0';
}

/* VRAM_CONTAIN=tree leaves cgroups alone (the fallback, as on a machine
 * without a delegated cgroup v2 subtree; the tests use it). */
static void drop_spare(void);

static void at_exit(void)
{
    drop_spare();
    if (*next_cg) {                 /* made, never started */
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", base, next_cg);
        rmdir(path);
        next_cg[0] = '\0';
    }
}

static void find_base(void)
{
    atexit(at_exit);
    const char *how = getenv("VRAM_CONTAIN");
    if (how && !strcmp(how, "tree"))
        return;
    char dir[4096];
    vram__cgroup_self(dir, sizeof(dir));
    if (!*dir)
        return;
    if (access(dir, W_OK) == 0)
        vram__strlcpy(base, dir, sizeof(base));
}

void vram__contain_prepare(void)
{
    pthread_once(&once, find_base);
}

/* base/vram-job-PID[/file], without printf (also used between fork and exec). */
static void cg_path(char *buf, size_t cap, pid_t pid, const char *file)
{
    char digits[24];
    size_t n = 0;
    unsigned long v = (unsigned long)pid;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < sizeof(digits));
    size_t at = 0;
    for (const char *s = base; *s && at + 1 < cap; s++)
        buf[at++] = *s;
    for (const char *s = "/vram-job-"; *s && at + 1 < cap; s++)
        buf[at++] = *s;
    while (n && at + 1 < cap)
        buf[at++] = digits[--n];
    for (const char *s = file; s && *s && at + 1 < cap; s++)
        buf[at++] = *s;
    buf[at] = '\0';
}

void vram__contain_enter(void)
{
    if (!*base)
        return;
    char path[4200];
    pid_t self = getpid();
    cg_path(path, sizeof(path), self, NULL);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return;                     /* not delegated after all: the fallback */
    cg_path(path, sizeof(path), self, "/cgroup.procs");
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t w = write(fd, "0", 1);
        (void)w;
        close(fd);
    }
}

static void drop_spare(void)
{
    if (!*spare_cg)
        return;
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", base, spare_cg);
    rmdir(path);                    /* one still holding a process stays: vramd's, stop.c */
    spare_cg[0] = '\0';
    spare_killed = false;
}

/* Whether the cgroup folder holds no process. */
/* Whether the cgroup at dir has a process: 1, 0, or -1 when it cannot be
 * read (a zombie is not listed: it has ended). */
static int cg_populated(const char *dir)
{
    char path[4300], c;
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n < 0 ? -1 : n > 0;
}

static bool cg_empty(const char *dir)
{
    return cg_populated(dir) == 0;
}

/* A new empty cgroup of ours named into name: its fd, or -1. */
static int make_cg(char *name, size_t cap)
{
    char path[4200];
    snprintf(name, cap, "vram-job-%ld-%lu", (long)getpid(), ++next_n);
    snprintf(path, sizeof(path), "%s/%s", base, name);
    if (mkdir(path, 0755) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        rmdir(path);
    return fd;
}

int vram__contain_make(void)
{
    char name[48], path[4200];
    if (*next_cg) {                 /* made for a start that failed */
        snprintf(path, sizeof(path), "%s/%s", base, next_cg);
        rmdir(path);
    }
    next_cg[0] = '\0';
    if (!*base)
        return -1;
    if (*spare_cg && spare_killed)
        drop_spare();
    if (*spare_cg) {                /* the one kept, if nothing of a job is left in it */
        snprintf(path, sizeof(path), "%s/%s", base, spare_cg);
        int fd = cg_empty(path) ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (fd >= 0) {
            vram__strlcpy(next_cg, spare_cg, sizeof(next_cg));
            spare_cg[0] = '\0';
            return fd;
        }
        drop_spare();
    }
    int fd = make_cg(name, sizeof(name));
    if (fd < 0)
        return -1;
    vram__strlcpy(next_cg, name, sizeof(next_cg));
    return fd;
}


/* The job's cgroup folder (and file): the one made for it, else the one
 * its command made itself, named by its pid. */
static void dir_of(char *buf, size_t cap, pid_t leader, const char *file)
{
    char cg[48] = "";
    pthread_mutex_lock(&started_lock);
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
        if (started[i].leader == leader)
            vram__strlcpy(cg, started[i].cg, sizeof(cg));
    pthread_mutex_unlock(&started_lock);
    if (*cg)
        snprintf(buf, cap, "%s/%s%s", base, cg, file ? file : "");
    else
        cg_path(buf, cap, leader, file);
}

/* The pids of the job's cgroup into *out (malloc'ed), or -1 when the job
 * has no cgroup. */
static int cg_pids(pid_t leader, pid_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!*base)
        return -1;
    char path[4200];
    dir_of(path, sizeof(path), leader, "/cgroup.procs");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t cap = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
        if (*n == cap) {
            pid_t *p = realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof(*p));
            if (!p)
                break;
            *out = p;
        }
        (*out)[(*n)++] = (pid_t)pid;
    }
    fclose(f);
    return 0;
}

/* Without a cgroup: the descendants of this process (not itself) that
 * started with the job or after it. */
static void tree_pids(pid_t leader, pid_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    uint32_t *tree;
    size_t count;
    if (vram__process_tree((uint32_t)getpid(), &tree, &count))
        return;
    uint64_t since = since_of(leader);
    pid_t *list = malloc((count + 1) * sizeof(*list));
    for (size_t i = 1; list && i < count; i++) {
        uint64_t t = vram__proc_start_ticks(tree[i]);
        if ((pid_t)tree[i] == leader || (since && t >= since) || vram__proc_pgrp(tree[i]) == (uint32_t)leader)
            list[(*n)++] = (pid_t)tree[i];
    }
    free(tree);
    *out = list;
}

static void job_pids(pid_t leader, pid_t **out, size_t *n)
{
    if (cg_pids(leader, out, n) != 0)
        tree_pids(leader, out, n);
}

int vram__contain_usage_by_device(vram_ctx *ctx, pid_t leader, uint64_t *per_dev, unsigned cap,
                                  unsigned *ndev_out)
{
    memset(per_dev, 0, cap * sizeof(*per_dev));
    pid_t *pids;
    size_t n;
    job_pids(leader, &pids, &n);
    unsigned ndev = 0;
    int rc = vram_device_count(ctx, &ndev);
    for (unsigned dev = 0; dev < ndev && !rc; dev++) {
        vram_device_snapshot d;
        rc = vram__snapshot_device(ctx, dev, true, &d);
        if (!rc && d.procs_status)
            rc = d.procs_status;
        for (size_t i = 0; !rc && dev < cap && i < d.nprocs; i++)
            for (size_t j = 0; j < n; j++)
                if ((pid_t)d.procs[i].pid == pids[j])
                    per_dev[dev] += d.procs[i].used_bytes;
        free(d.procs);
    }
    free(pids);
    *ndev_out = ndev;
    return rc;
}

int vram__contain_usage(vram_ctx *ctx, pid_t leader, uint64_t *bytes_out)
{
    uint64_t per_dev[VRAM_MAX_DEVICES];
    unsigned ndev;
    *bytes_out = 0;
    int rc = vram__contain_usage_by_device(ctx, leader, per_dev, VRAM_MAX_DEVICES, &ndev);
    for (unsigned dev = 0; !rc && dev < ndev && dev < VRAM_MAX_DEVICES; dev++)
        *bytes_out += per_dev[dev];
    return rc;
}

bool vram__contain_alive(pid_t leader)
{
    if (leader <= 0)
        return false;
    if (*base) {                    /* its cgroup's first line says it: no list to read */
        char dir[4200];
        dir_of(dir, sizeof(dir), leader, NULL);
        int populated = cg_populated(dir);
        if (populated >= 0)
            return populated || kill(-leader, 0) == 0;
    }
    pid_t *pids;
    size_t n;
    job_pids(leader, &pids, &n);
    bool alive = false;
    for (size_t i = 0; i < n && !alive; i++)
        alive = kill(pids[i], 0) == 0 || errno == EPERM;
    free(pids);
    return alive || kill(-leader, 0) == 0;
}

size_t vram__contain_signal(pid_t leader, int sig)
{
    if (leader <= 0)
        return 0;
    pid_t *pids;
    size_t n, hit = 0;
    job_pids(leader, &pids, &n);
    for (size_t i = 0; i < n; i++)
        hit += kill(pids[i], sig) == 0;
    free(pids);
    if (sig == SIGKILL && *base) {
        pthread_mutex_lock(&started_lock);
        for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
            if (started[i].leader == leader)
                started[i].killed = true;
        pthread_mutex_unlock(&started_lock);
        char path[4200];
        dir_of(path, sizeof(path), leader, "/cgroup.kill");
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t w = write(fd, "1", 1);
            (void)w;
            close(fd);
        }
    }
    kill(-leader, sig);
    return hit;
}

void vram__contain_end(pid_t leader)
{
    char path[4200] = "", cg[48] = "";
    bool killed = false;
    if (leader > 0 && *base)
        dir_of(path, sizeof(path), leader, NULL);
    pthread_mutex_lock(&started_lock);
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
        if (started[i].leader == leader) {
            vram__strlcpy(cg, started[i].cg, sizeof(cg));
            killed = started[i].killed;
            started[i].leader = 0;
            started[i].killed = false;
        }
    pthread_mutex_unlock(&started_lock);
    if (*cg && leader > 0) {        /* one we made: kept for the next command (checked empty then) */
        drop_spare();
        vram__strlcpy(spare_cg, cg, sizeof(spare_cg));
        spare_killed = killed;      /* then removed at the next start, its processes gone by then */
    } else if (*path) {
        rmdir(path);                /* only an empty cgroup goes; a full one was never ours to end */
    }
}

const char *vram__contain_kind(pid_t leader)
{
    if (leader > 0 && *base) {
        char path[4200];
        dir_of(path, sizeof(path), leader, NULL);
        struct stat st;
        if (stat(path, &st) == 0)
            return "cgroup";
    }
    return "process tree";
}
