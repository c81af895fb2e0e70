/* SPDX-License-Identifier: MIT */
/*
 * device/select.c - which backend a context gets.
 *
 * "nvml" and "sim" are taken as asked, and a failure to open them is the
 * caller's error.  "auto" tries nvml and, when it cannot load or finds no
 * GPU, opens sim and writes down why, so that every output can say plainly
 * that the cards are simulated.  sim is never chosen silently, and never on
 * a machine that has an NVIDIA driver: there a failing NVML (a library that
 * no longer matches the kernel module after an update, a lost GPU) is the
 * error it is, not a reason to pretend.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/ctx.h"
#include "device/backend.h"

int vram__backend_select(const vram_options *opts, vram_backend **out, char *notice, size_t cap)
{
    const char *want = vram__opt_str(opts, VRAM__OPT_BACKEND);
    notice[0] = '\0';
    if (strcmp(want, "auto") != 0) {
        int rc = vram__backend_open(want, opts, out);
        if (!rc && !strcmp(want, "sim"))
            snprintf(notice, cap, "not real cards; the sim backend was asked for");
        return rc;
    }
    int rc = vram__backend_open("nvml", opts, out);
    if (rc == 0)
        return 0;
    char why[400];
    vram__strlcpy(why, vram_last_error(), sizeof(why));
    bool node = access("/dev/nvidiactl", F_OK) == 0;
    if (node || rc == VRAM_ELOST || strstr(why, "version mismatch")) {
        return vram__fail(rc, "%s%s (vram does not fall back to simulated cards where an "
                          "NVIDIA driver is installed; --backend=sim asks for them)", why,
                          node ? "; /dev/nvidiactl exists" : "");
    }
    rc = vram__backend_open("sim", opts, out);
    if (rc)
        return rc;
    snprintf(notice, cap, "not real cards; %s", why);
    vram__clear_error();
    return 0;
}
