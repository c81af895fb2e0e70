/* SPDX-License-Identifier: MIT */
/*
 * monitor/proctree.c - the GPU memory of a process and all its descendants.
 *
 * A job's script may fork workers and exit while they keep the GPU, so a
 * job's usage is that of its whole tree: the root and every process whose
 * chain of parents leads to it, read from /proc; or, for a job started in
 * its own process group, every process of that group (which orphans keep
 * even when re-parented).  Also what /proc and waitid tell of one process:
 * its group, its start, whether it lives, whether it is our unreaped child.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "monitor/monitor.h"

typedef struct pp {
    uint32_t pid, ppid, pgrp;
} pp;

/* Reads /proc/PID/stat into LINE and returns its fields from the third (the
 * state letter) on, or NULL when the process is gone.  The command name
 * before them may hold spaces and parens, so they start after the last ')'. */
static const char *stat_fields(unsigned long pid, char *line, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%lu/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    bool ok = fgets(line, (int)cap, f) != NULL;
    fclose(f);
    char *rp = ok ? strrchr(line, ')') : NULL;
    return rp && rp[1] == ' ' ? rp + 2 : NULL;
}

/* Every process's parent and group, from /proc/<pid>/stat. */
static int read_parents(pp **out, size_t *count)
{
    DIR *d = opendir("/proc");
    if (!d)
        return vram__fail(VRAM_EIO, "cannot read /proc");
    size_t n = 0, cap = 512;
    pp *list = malloc(cap * sizeof(*list));
    struct dirent *e;
    while (list && (e = readdir(d))) {
        char *end;
        unsigned long pid = strtoul(e->d_name, &end, 10);
        if (*end || !pid)
            continue;
        char line[1024];
        const char *fields = stat_fields(pid, line, sizeof(line));
        unsigned ppid, pgrp;
        if (!fields || sscanf(fields, "%*c %u %u", &ppid, &pgrp) != 2)
            continue;
        if (n == cap) {
            pp *p = realloc(list, (cap *= 2) * sizeof(*list));
            if (!p) {
                free(list);
                list = NULL;
                break;
            }
            list = p;
        }
        list[n++] = (pp){ (uint32_t)pid, ppid, pgrp };
    }
    closedir(d);
    if (!list)
        return vram__fail(VRAM_ENOMEM, "out of host memory reading /proc");
    *out = list;
    *count = n;
    return 0;
}

int vram__process_tree(uint32_t root, uint32_t **pids_out, size_t *count_out)
{
    pp *all;
    size_t n;
    *pids_out = NULL;
    *count_out = 0;
    int rc = read_parents(&all, &n);
    if (rc)
        return rc;
    uint32_t *tree = malloc((n + 1) * sizeof(*tree));
    if (!tree) {
        free(all);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    size_t count = 0;
    tree[count++] = root;
    /* Breadth first: each pass adds the children of what is already in. */
    for (size_t at = 0; at < count; at++)
        for (size_t i = 0; i < n; i++)
            if (all[i].ppid == tree[at] && all[i].pid != root && count <= n)
                tree[count++] = all[i].pid;
    free(all);
    *pids_out = tree;
    *count_out = count;
    return 0;
}

/* Sums the device usage of the listed pids over every device. */
static int usage_of(vram_ctx *ctx, const uint32_t *pids, size_t npids, uint64_t *bytes_out)
{
    unsigned ndev;
    int rc = vram_device_count(ctx, &ndev);
    uint64_t total = 0;
    for (unsigned dev = 0; dev < ndev && !rc; dev++) {
        vram_device_snapshot d;
        rc = vram__snapshot_device(ctx, dev, true, &d);
        if (!rc && d.procs_status)
            rc = vram__fail(d.procs_status, "device %u cannot list its processes", dev);
        for (size_t i = 0; !rc && i < d.nprocs; i++)
            for (size_t j = 0; j < npids; j++)
                if (d.procs[i].pid == pids[j])
                    total += d.procs[i].used_bytes;
        free(d.procs);
    }
    if (!rc)
        *bytes_out = total;
    return rc;
}

int vram_process_tree_usage(vram_ctx *ctx, uint32_t pid, uint64_t *bytes_out)
{
    if (!ctx || !bytes_out || !pid)
        return vram__fail(VRAM_EINVAL, "vram_process_tree_usage: NULL argument or pid 0");
    *bytes_out = 0;
    uint32_t *tree;
    size_t ntree;
    int rc = vram__process_tree(pid, &tree, &ntree);
    if (!rc)
        rc = usage_of(ctx, tree, ntree, bytes_out);
    free(tree);
    return rc;
}

int vram__process_groups_usage_on(vram_ctx *ctx, const uint32_t *pgids, size_t n, uint64_t *bytes_out,
                                  vram__device_use *devs, size_t ndevs)
{
    memset(bytes_out, 0, n * sizeof(*bytes_out));
    if (devs)
        memset(devs, 0, ndevs * sizeof(*devs));
    unsigned ndev = 0;
    int rc = vram_device_count(ctx, &ndev);
    if (rc)
        return rc;
    /* A device that cannot be read (lost, or refusing its process list)
     * leaves the others' numbers standing; it is an error only when no
     * device could be read. */
    int first = 0;
    bool any = false;
    for (unsigned dev = 0; dev < ndev; dev++) {
        vram_device_snapshot d;
        rc = vram__snapshot_device(ctx, dev, true, &d);
        if (!rc && d.procs_status)
            rc = vram__fail(d.procs_status, "device %u cannot list its processes", dev);
        if (rc) {
            first = first ? first : rc;
            free(d.procs);
            continue;
        }
        any = true;
        if (devs && dev < ndevs) {
            devs[dev].read = true;
            devs[dev].used_bytes = d.info.used_bytes;
            for (size_t i = 0; i < d.nprocs; i++)
                devs[dev].foreign |= (d.procs[i].have & VRAM_HAVE_PROC_FOREIGN) != 0;
        }
        for (size_t i = 0; i < d.nprocs; i++) {
            uint32_t pgrp = n ? vram__proc_pgrp(d.procs[i].pid) : 0;   /* /proc only when asked */
            for (size_t g = 0; pgrp && g < n; g++)
                if (pgids[g] == pgrp)
                    bytes_out[g] += d.procs[i].used_bytes;
        }
        free(d.procs);
    }
    if (!any && first)
        return first;
    vram__clear_error();
    return 0;
}

int vram__process_groups_usage(vram_ctx *ctx, const uint32_t *pgids, size_t n, uint64_t *bytes_out)
{
    return vram__process_groups_usage_on(ctx, pgids, n, bytes_out, NULL, 0);
}

int vram_process_group_usage(vram_ctx *ctx, uint32_t pgid, uint64_t *bytes_out)
{
    if (!ctx || !bytes_out || !pgid)
        return vram__fail(VRAM_EINVAL, "vram_process_group_usage: NULL argument or group 0");
    int rc = vram__process_groups_usage(ctx, &pgid, 1, bytes_out);
    if (rc)
        *bytes_out = 0;
    return rc;
}

uint32_t vram__proc_pgrp(uint32_t pid)
{
    char line[1024];
    const char *fields = stat_fields(pid, line, sizeof(line));
    unsigned ppid, pgrp;
    if (!fields || sscanf(fields, "%*c %u %u", &ppid, &pgrp) != 2)
        return 0;
    return pgrp;
}

uint64_t vram__proc_start_ticks(uint32_t pid)
{
    char line[1024];
    const char *p = stat_fields(pid, line, sizeof(line));
    if (!p)
        return 0;
    /* Field 22, starttime; p starts at field 3. */
    unsigned long long start = 0;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu", &start) != 1)
        return 0;
    return start;
}

/* The state letter of a process (R, S, D, Z, ...), or 0 when it is gone. */
static char proc_state(uint32_t pid)
{
    char line[1024];
    const char *fields = stat_fields(pid, line, sizeof(line));
    return fields ? fields[0] : 0;
}

bool vram__proc_alive(uint32_t pid, uint64_t start_ticks)
{
    if (!pid)
        return false;
    uint64_t now = vram__proc_start_ticks(pid);
    if (now == 0 || (start_ticks && now != start_ticks))
        return false;
    /* A zombie has ended; in a container, PID 1 may take long to reap it. */
    char state = proc_state(pid);
    return state != 0 && state != 'Z' && state != 'X';
}

bool vram__proc_unreaped_child(uint32_t pid, bool *exited)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (!pid || waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return false;               /* ECHILD: not ours, or reaped */
    if (exited)
        *exited = si.si_pid != 0;
    return true;
}

void vram__cgroup_self(char *buf, size_t cap)
{
    char line[4096], mnt[2048] = "", path[2048] = "";
    buf[0] = '\0';
    FILE *f = fopen("/proc/self/mountinfo", "re");
    /* id parent major:minor root mountpoint options... - fstype source super */
    while (f && fgets(line, sizeof(line), f)) {
        char *dash = strstr(line, " - ");
        if (dash && !strncmp(dash + 3, "cgroup2 ", 8) && sscanf(line, "%*s %*s %*s %*s %2047s", mnt) == 1)
            break;
        mnt[0] = '\0';
    }
    if (f)
        fclose(f);
    f = *mnt ? fopen("/proc/self/cgroup", "re") : NULL;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = '\0';
            vram__strlcpy(path, line + 3, sizeof(path));
        }
    if (f)
        fclose(f);
    if (*path && !strstr(path, "(deleted)")) {
        int n = snprintf(buf, cap, "%s%s", mnt, strcmp(path, "/") ? path : "");
        if (n < 0 || (size_t)n >= cap)
            buf[0] = '\0';
    }
}
