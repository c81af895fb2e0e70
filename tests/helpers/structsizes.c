/* SPDX-License-Identifier: MIT */
/*
 * tests/helpers/structsizes.c - prints the size of every public struct the
 * Python binding mirrors with ctypes, as JSON, so that a test can hold the
 * two layouts to each other (a field added in C and not in Python would
 * make the library read past the end of Python's struct).
 */
#include <stddef.h>
#include <stdio.h>

#include "vram.h"

#define SIZE(type) printf("%s\"%s\": %zu", first ? "" : ", ", #type, sizeof(type)), first = 0

int main(void)
{
    int first = 1;
    printf("{");
    SIZE(vram_image);
    SIZE(vram_task_call);
    SIZE(vram_rung);
    SIZE(vram_task);
    SIZE(vram_outcome);
    SIZE(vram_sched_config);
    SIZE(vram_lease_request);
    SIZE(vram_lease_info);
    SIZE(vram_ledger_device);
    SIZE(vram_sched_stats);
    SIZE(vram_estimate);
    SIZE(vram_suggestion);
    SIZE(vram_optimization);
    printf(", \"vram_task_call.reason\": %zu", offsetof(vram_task_call, reason));
    printf(", \"vram_outcome.resampled\": %zu", offsetof(vram_outcome, resampled));
    printf(", \"vram_lease_request.pgid\": %zu", offsetof(vram_lease_request, pgid));
    printf(", \"vram_task.fn\": %zu", offsetof(vram_task, fn));
    printf(", \"vram_lease_request.bytes\": %zu", offsetof(vram_lease_request, bytes));
    printf(", \"vram_sched_config.workers\": %zu", offsetof(vram_sched_config, workers));
    printf(", \"vram_optimization.evaluated\": %zu", offsetof(vram_optimization, evaluated));
    printf(", \"versions\": [%d, %d, %d]", VRAM_TASK_VERSION, VRAM_SCHED_CONFIG_VERSION,
           VRAM_LEASE_REQUEST_VERSION);
    printf("}\n");
    return 0;
}
