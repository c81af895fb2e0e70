/* SPDX-License-Identifier: MIT */
/*
 * monitor/monitor.h - what the monitor shares with the rest of libvram.
 */
#ifndef VRAM_MONITOR_MONITOR_H
#define VRAM_MONITOR_MONITOR_H

#include <stdbool.h>

#include "core/ctx.h"
#include "core/json_read.h"

/* Queries one device into d (without its processes unless with_procs) and
 * works out its budget: leased, others, margin and safe available.  On a
 * failed query d->error is set and the error returned. */
int vram__snapshot_device(vram_ctx *ctx, unsigned idx, bool with_procs, vram_device_snapshot *d);

/* Recomputes the budget fields of d from its info and the ledger. */
void vram__device_budget(vram_ctx *ctx, vram_device_snapshot *d);

/* Reads back what vram_snapshot_to_json wrote (len bytes of text): the
 * snapshot vramd sends over its socket.  The strings live with the
 * snapshot; free it with vram_snapshot_free.  VRAM_EPARSE, naming what is
 * missing or malformed, for anything else. */
int vram__snapshot_from_json(const char *text, size_t len, vram_snapshot **out);
/* The same from a parsed JSON object (the "status" of a socket reply). */
int vram__snapshot_from_jv(const vram__jv *root, vram_snapshot **out);

/* Called on the sampling thread after every sample of a device, outside the
 * monitor's lock, with the snapshot just taken (d->error set when the query
 * failed).  How the ledger learns what other programs use.  One listener. */
typedef void (*vram__sample_fn)(void *user, unsigned device, const vram_device_snapshot *d);
void vram__monitor_set_listener(vram_monitor *m, vram__sample_fn fn, void *user);

/* Number of devices the monitor samples. */
unsigned vram__monitor_devices(const vram_monitor *m);

/* The pids of root and all its descendants (root first).  Free with free. */
int vram__process_tree(uint32_t root, uint32_t **pids_out, size_t *count_out);

/* The device usage of each of n process groups (bytes_out[i] for
 * pgids[i]): one snapshot of every device, and /proc read only for the
 * processes on them, however many groups are asked about. */
int vram__process_groups_usage(vram_ctx *ctx, const uint32_t *pgids, size_t n, uint64_t *bytes_out);

/* A device as vram__process_groups_usage_on read it: its used memory, and
 * whether NVML listed pids that this /proc does not have (vram in another
 * pid namespace: a container without --pid=host), in which case its
 * per-process numbers say nothing of our groups. */
typedef struct vram__device_use {
    bool read;                      /* this sample has it */
    bool foreign;
    uint64_t used_bytes;
} vram__device_use;

/* vram__process_groups_usage, also telling in devs[0..ndevs) how each
 * device was read, for accounting per lease where pids do not resolve. */
int vram__process_groups_usage_on(vram_ctx *ctx, const uint32_t *pgids, size_t n, uint64_t *bytes_out,
                                  vram__device_use *devs, size_t ndevs);

/* The process group of pid, from /proc; 0 when it is gone. */
uint32_t vram__proc_pgrp(uint32_t pid);

/* When pid started, in clock ticks since boot (field 22 of /proc/PID/stat);
 * 0 when it is gone.  With the pid it names one process for good: a pid
 * reused by another program has another start time. */
uint64_t vram__proc_start_ticks(uint32_t pid);

/* True while process pid lives (a zombie does not) and, when start_ticks is
 * not 0, is the same process. */
bool vram__proc_alive(uint32_t pid, uint64_t start_ticks);

/* Whether pid is a child of this process not reaped yet, asked without
 * reaping it (waitid's WNOWAIT); *exited then says whether it has ended.
 * Such a pid names its process alone, so its start (or its being alive) is
 * known without a /proc read that races a reuse. */
bool vram__proc_unreaped_child(uint32_t pid, bool *exited);

/* This process's cgroup v2 folder (mount point + /proc/self/cgroup's path)
 * into buf; "" where there is no v2 hierarchy, the group is deleted, or the
 * path does not fit. */
void vram__cgroup_self(char *buf, size_t cap);

#endif
