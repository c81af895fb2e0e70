/* SPDX-License-Identifier: MIT */
/*
 * plan/alloc.c - the PyTorch allocator settings a job gets, and the
 * version of PyTorch they are for.
 *
 * Owns which PYTORCH_CUDA_ALLOC_CONF options a PyTorch accepts and acts on:
 *
 *   max_split_size_mb              1.10 and later; ignored once
 *                                  expandable_segments is on
 *   garbage_collection_threshold   acts only under a memory fraction
 *   expandable_segments            2.1 and later; 2.0 and older refuse the
 *                                  whole string ("Unrecognized
 *                                  CachingAllocator option"), killing the
 *                                  job at its first allocation
 *   per_process_memory_fraction    in the string from 2.9 (pytorch/pytorch
 *                                  #161035); before, only the job's own
 *                                  torch.cuda.set_per_process_memory_fraction
 *
 * so an old PyTorch gets max_split_size_mb alone (small budgets), 2.1 to
 * 2.8 expandable segments alone, and 2.9 and later expandable segments with
 * the allocator capped at the budget less the CUDA context (which is outside
 * any allocator cap) and a collection threshold that the cap makes act.
 * Combining expandable segments with the threshold needs 2.5 or later
 * (pytorch/pytorch#134338), which 2.9 is.  An unknown version is taken as a
 * recent one without the cap: expandable segments alone.
 *
 * The version comes from the profile's `torch` key, VRAM_TORCH_VERSION, or a
 * cheap probe: the torch-*.dist-info folder of the python3 on PATH, read
 * from the file system without starting Python.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/ctx.h"
#include "device/host.h"
#include "plan/format.h"

#define DEFAULT_CONTEXT (512 * VRAM__MiB)   /* 300-600 MiB; more with cuDNN/cuBLAS */

/* "2.4.1+cu121" -> 204; "1.12" -> 112; 0 when it is not a version. */
static int version_number(const char *v)
{
    int major = 0, minor = 0;
    if (!v || sscanf(v, "%d.%d", &major, &minor) != 2 || major < 0 || minor < 0 || minor > 99)
        return 0;
    return major * 100 + minor;
}

/* The collection threshold by budget: small budgets give cached blocks back
 * early. */
static const char *gc_threshold(uint64_t budget)
{
    return budget < 6 * VRAM__GiB ? "0.6" : budget < 12 * VRAM__GiB ? "0.7" : "0.8";
}

static const char *split_size(uint64_t budget)
{
    return budget < 6 * VRAM__GiB ? "64" : budget < 12 * VRAM__GiB ? "128" : "512";
}

int vram_alloc_conf(uint64_t budget_bytes, uint64_t device_total_bytes, uint64_t context_bytes,
                    const char *torch_version, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return vram__fail(VRAM_EINVAL, "vram_alloc_conf: NULL or empty buffer");
    buf[0] = '\0';
    int v = torch_version && *torch_version ? version_number(torch_version) : -1;
    if (torch_version && *torch_version && v == 0)
        return vram__fail(VRAM_EINVAL, "torch version '%.40s' is not MAJOR.MINOR[.PATCH]",
                          torch_version);
    bool small = budget_bytes && budget_bytes < 24 * VRAM__GiB;
    int n;
    if (v >= 0 && v < 110) {
        n = 0;                      /* before PYTORCH_CUDA_ALLOC_CONF's options */
    } else if (v >= 110 && v < 201) {
        n = small ? snprintf(buf, cap, "max_split_size_mb:%s", split_size(budget_bytes)) : 0;
    } else if (v >= 209 && budget_bytes && device_total_bytes > budget_bytes) {
        uint64_t ctx = context_bytes ? context_bytes : DEFAULT_CONTEXT;
        uint64_t room = budget_bytes > ctx ? budget_bytes - ctx : budget_bytes / 2;
        /* Rounded down to a thousandth, so the cap never exceeds the room. */
        unsigned permille = (unsigned)((double)room / (double)device_total_bytes * 1000.0);
        if (permille < 1)
            permille = 1;
        n = snprintf(buf, cap, "expandable_segments:True,per_process_memory_fraction:%u.%03u,"
                     "garbage_collection_threshold:%s", permille / 1000, permille % 1000,
                     gc_threshold(budget_bytes));
    } else {
        n = snprintf(buf, cap, "expandable_segments:True");
    }
    if (n < 0 || (size_t)n >= cap)
        return vram__fail(VRAM_ERANGE, "vram_alloc_conf: %zu bytes are too few", cap);
    return 0;
}

/* ---- the probe ------------------------------------------------------------------ */

/* Looks for torch-X.dist-info (or .egg-info) in dir; 1 when found. */
static int scan_site(const char *dir, char *buf, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        const char *name = e->d_name;
        if (strncmp(name, "torch-", 6) != 0)
            continue;
        const char *dot = strstr(name, ".dist-info");
        if (!dot)
            dot = strstr(name, ".egg-info");
        if (!dot || !version_number(name + 6))
            continue;
        snprintf(buf, cap, "%.*s", (int)(dot - name - 6), name + 6);
        found = 1;
    }
    closedir(d);
    return found;
}

/* site-packages and dist-packages of every python3.* under prefix/lib. */
static int scan_prefix(const char *prefix, char *buf, size_t cap)
{
    char lib[4096];
    snprintf(lib, sizeof(lib), "%s/lib", prefix);
    DIR *d = opendir(lib);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        if (strncmp(e->d_name, "python3", 7) != 0)
            continue;
        static const char *const kinds[] = { "site-packages", "dist-packages" };
        for (size_t k = 0; !found && k < VRAM__ARRAY_LEN(kinds); k++) {
            char site[4096 + 300];
            snprintf(site, sizeof(site), "%s/%s/%s", lib, e->d_name, kinds[k]);
            found = scan_site(site, buf, cap);
        }
    }
    closedir(d);
    return found;
}

int vram_torch_version(char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return vram__fail(VRAM_EINVAL, "vram_torch_version: NULL or empty buffer");
    buf[0] = '\0';
    const char *env = getenv("VRAM_TORCH_VERSION");
    if (env && *env) {
        if (!strcmp(env, "none"))
            return vram__fail(VRAM_ENOENT, "VRAM_TORCH_VERSION=none: the job has no PyTorch");
        if (!version_number(env))
            return vram__fail(VRAM_EINVAL, "VRAM_TORCH_VERSION='%.40s' is not MAJOR.MINOR[.PATCH] "
                              "or none", env);
        vram__strlcpy(buf, env, cap);
        return 0;
    }
    /* The prefix of the python3 on PATH (a venv's or conda's bin/..). */
    const char *path = getenv("PATH");
    char copy[8192];
    vram__strlcpy(copy, path ? path : "", sizeof(copy));
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char py[4200];
        snprintf(py, sizeof(py), "%s/python3", dir);
        if (access(py, X_OK) != 0)
            continue;
        char prefix[4200];
        snprintf(prefix, sizeof(prefix), "%s/..", dir);
        if (scan_prefix(prefix, buf, cap))
            return 0;
        break;                      /* the first python3 is the job's */
    }
    const char *home = getenv("HOME");
    if (home) {
        char local[4200];
        snprintf(local, sizeof(local), "%s/.local", home);
        if (scan_prefix(local, buf, cap))
            return 0;
    }
    static const char *const prefixes[] = { "/usr/local", "/usr" };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(prefixes); i++)
        if (scan_prefix(prefixes[i], buf, cap))
            return 0;
    return vram__fail(VRAM_ENOENT, "no PyTorch found beside the python3 on PATH");
}

/* ---- plans ----------------------------------------------------------------------- */


const char *vram_alloc_conf_for(uint64_t budget_bytes)
{
    (void)budget_bytes;
    return "expandable_segments:True";
}

const char *vram_plan_torch_version(const vram_plan *plan)
{
    return plan ? plan->prof.torch : "";
}

uint64_t vram__plan_context_bytes(const vram_plan *plan)
{
    return plan && plan->prof.context_bytes > 0 ? (uint64_t)plan->prof.context_bytes : 0;
}

void plan__alloc_fill(vram_plan *plan)
{
    char probed[32] = "";
    const char *v = plan->prof.torch;
    if (!*v && vram_torch_version(probed, sizeof(probed)) == 0)
        v = probed;
    vram__clear_error();
    if (vram_alloc_conf(plan->budget, 0, (uint64_t)plan->prof.context_bytes, v, plan->alloc,
                        sizeof(plan->alloc)))
        vram__strlcpy(plan->alloc, vram_alloc_conf_for(plan->budget), sizeof(plan->alloc));
    vram__clear_error();
}

uint64_t plan__weights_room(const vram_plan *plan)
{
    const plan_estimate *e = &plan->chosen;
    double rest = e->activations + e->context + e->slack + e->margin;
    double room = (double)plan->budget - rest;
    return room > 0 ? (uint64_t)room : 0;
}

/* ---- host RAM ------------------------------------------------------------------ */

/* Beefy's host figure is the largest component staged while loading:
 * transient and not pinned (a checkpoint can be read in pieces), so only the
 * offloading modes, which keep weights pinned in host RAM, are held to it. */
bool plan__host_fits(const plan_params *x, const plan_estimate *e)
{
    return !(x->host_limit > 0) || e->mode == VRAM_MEMORY_BEEFY || e->host <= x->host_limit;
}

int plan__host_limit(vram_ctx *ctx, double *out)
{
    *out = 0;
    /* Without a context the plan is for a budget, maybe of another machine:
     * only a size given in VRAM_HOST_RAM is checked. */
    vram_options *own = NULL;
    const vram_options *o = ctx ? vram_ctx_options(ctx) : NULL;
    if (!o && vram_options_new(&own) == 0) {
        vram__options_load_env_lenient(own);
        o = own;
    }
    char v[64];
    vram__strlcpy(v, o ? vram__opt_str(o, VRAM__OPT_HOST_RAM) : "auto", sizeof(v));
    vram_options_free(own);
    if (!strcmp(v, "off") || (!ctx && (!*v || !strcmp(v, "auto"))))
        return 0;
    if (!*v || !strcmp(v, "auto")) {
        vram_host_info h;
        vram__host_query(NULL, &h);
        *out = (double)h.ram_available_bytes;
        return 0;
    }
    uint64_t bytes;
    if (vram_size_parse(v, &bytes) || bytes == 0)
        return vram__fail(VRAM_EINVAL, "host-ram: '%.40s' is not auto, off or a size (e.g. 64GiB)", v);
    *out = (double)bytes;
    return 0;
}

int vram__plan_format_for_cuda(const vram_plan *plan, unsigned cuda_device, const char *format,
                               char **text_out)
{
    if (!plan || !text_out)
        return vram__fail(VRAM_EINVAL, "vram__plan_format_for_cuda: NULL argument");
    vram_plan *copy = malloc(sizeof(*copy));
    if (!copy)
        return vram__fail(VRAM_ENOMEM, "out of host memory formatting a plan");
    *copy = *plan;
    copy->device = cuda_device;
    int rc = vram_plan_format(copy, format, text_out);
    free(copy);
    return rc;
}
