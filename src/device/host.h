/* SPDX-License-Identifier: MIT */
/*
 * device/host.h - the host's RAM, CPUs, load and disk (see host.c).
 */
#ifndef VRAM_DEVICE_HOST_H
#define VRAM_DEVICE_HOST_H

#include "core/core.h"

/* Fills h; fields it cannot read stay 0.  disk_path NULL or "": ".". */
int vram__host_query(const char *disk_path, vram_host_info *h);

#endif
