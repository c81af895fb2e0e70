/*
 * monitor/proctree.c - the GPU memory of a process and all its descendants.
 *
 * A job's script may fork workers and exit while they keep the GPU, so a
 * job's usage is that of its whole tree: the root and every process whose
 * chain of parents leads to it, read from /proc.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/monitor.h"

typedef struct pp {
    uint32_t pid, ppid;
} pp;

/* Every process's parent, from /proc/<pid>/stat. */
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
        char path[64], line[512];
        snprintf(path, sizeof(path), "/proc/%lu/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool ok = fgets(line, sizeof(line), f) != NULL;
        fclose(f);
        /* The command name may hold spaces and parens: parse after the last ')'. */
        char *rp = ok ? strrchr(line, ')') : NULL;
        unsigned ppid;
        if (!rp || sscanf(rp + 1, " %*c %u", &ppid) != 1)
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
        list[n++] = (pp){ (uint32_t)pid, ppid };
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

int vram_process_tree_usage(vram_ctx *ctx, uint32_t pid, uint64_t *bytes_out)
{
    if (!ctx || !bytes_out || !pid)
        return vram__fail(VRAM_EINVAL, "vram_process_tree_usage: NULL argument or pid 0");
    *bytes_out = 0;
    uint32_t *tree;
    size_t ntree;
    int rc = vram__process_tree(pid, &tree, &ntree);
    if (rc)
        return rc;
    unsigned ndev;
    if ((rc = vram_device_count(ctx, &ndev))) {
        free(tree);
        return rc;
    }
    uint64_t total = 0;
    for (unsigned dev = 0; dev < ndev && !rc; dev++) {
        vram_device_snapshot d;
        rc = vram__snapshot_device(ctx, dev, true, &d);
        if (!rc && d.procs_status)
            rc = vram__fail(d.procs_status, "device %u cannot list its processes", dev);
        for (size_t i = 0; !rc && i < d.nprocs; i++)
            for (size_t j = 0; j < ntree; j++)
                if (d.procs[i].pid == tree[j])
                    total += d.procs[i].used_bytes;
        free(d.procs);
    }
    free(tree);
    if (!rc)
        *bytes_out = total;
    return rc;
}
