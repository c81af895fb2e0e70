/* SPDX-License-Identifier: MIT */
/*
 * device/host.c - the host side of a snapshot: RAM, CPUs, load and the free
 * space of one filesystem.
 *
 * Pipelines need RAM for offloaded weights and disk for their outputs, so a
 * device snapshot without these would tell half the story.  Reads /proc and
 * statvfs only; a field it cannot read stays zero.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "device/host.h"

static void read_meminfo(vram_host_info *h)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return;
    char line[256];
    unsigned long long kib;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
            h->ram_total_bytes = kib * 1024ull;
        else if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
            h->ram_available_bytes = kib * 1024ull;
    }
    fclose(f);
}

int vram__host_query(const char *disk_path, vram_host_info *h)
{
    memset(h, 0, sizeof(*h));
    read_meminfo(h);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    h->cpu_count = cpus > 0 ? (unsigned)cpus : 0;
    double load[3];
    if (getloadavg(load, 3) == 3) {
        h->load_1m = load[0];
        h->load_5m = load[1];
        h->load_15m = load[2];
    }
    vram__strlcpy(h->disk_path, disk_path && *disk_path ? disk_path : ".", sizeof(h->disk_path));
    struct statvfs vfs;
    if (statvfs(h->disk_path, &vfs) == 0) {
        h->disk_total_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        h->disk_free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    }
    return 0;
}
