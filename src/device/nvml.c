/* SPDX-License-Identifier: MIT */
/*
 * device/nvml.c - real NVIDIA GPUs through NVML, reached with dlopen.
 *
 * Needs no NVIDIA header or library to build: it declares only the types,
 * constants and entry points it uses, resolves them at open into a table
 * kept in the instance, and fails open only when a required one is missing.
 * Memory comes from nvmlDeviceGetMemoryInfo_v2 where the driver has it (so
 * driver-reserved memory is reported apart from used), else from the v1
 * call, and the device info says which.  Process lists try the newest call
 * first and grow the buffer when NVML answers "insufficient size", and add
 * MPS clients (nvmlDeviceGetMPSComputeRunningProcesses_v3) as nvtop does.
 *
 * The devices are the ones CUDA would give this process, in CUDA's order:
 * a GPU in MIG mode becomes its MIG instances (each with its own memory and
 * MIG- UUID; the parent is never a device, since CUDA cannot use it), and
 * CUDA_VISIBLE_DEVICES (indices, GPU-/MIG- UUIDs or their prefixes, cut at
 * the first entry that names nothing, as CUDA does) or else Slurm's
 * SLURM_STEP_GPUS / SLURM_JOB_GPUS (ids of /dev/nvidiaN, matched by the
 * GPU's minor number) keep only the devices we were given.
 * A device that answers NVML_ERROR_GPU_IS_LOST, or fails LOST_AFTER queries
 * in a row, is lost for good: VRAM_ELOST from then on.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device/backend.h"

/* ---- the part of nvml.h we use ------------------------------------------ */

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
};

#define NVML_DEVICE_MIG_ENABLE 1

#define NVML_VALUE_NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFull
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

/* NVML_STRUCT_VERSION(Memory, 2): the structure's size with the version in
 * the top byte.  The driver checks it; the bare number 2 is refused. */
#define NVML_STRUCT_VERSION(type, ver) ((unsigned int)(sizeof(type) | ((ver) << 24u)))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(nvmlMemory_v2_t, 2)

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_v2_t;             /* also what the _v3 calls fill */

/* ---- the resolved calls ---------------------------------------------------- */

/* nvmlUtilization_t: percent of the last sample period busy. */
typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;
#define NVML_TEMPERATURE_GPU 0

typedef nvmlReturn_t (*proc_v2_fn)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_v2_t *);
typedef nvmlReturn_t (*proc_v1_fn)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_v1_t *);

typedef struct nvml_api {
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*shutdown)(void);
    const char *(*error_string)(nvmlReturn_t);
    nvmlReturn_t (*device_count)(unsigned int *);
    nvmlReturn_t (*handle_by_index)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*memory_v2)(nvmlDevice_t, nvmlMemory_v2_t *);
    nvmlReturn_t (*memory_v1)(nvmlDevice_t, nvmlMemory_t *);
    /* Process lists, newest first: compute then graphics. */
    proc_v2_fn compute_v3, compute_v2, graphics_v3, graphics_v2, mps_v3;
    proc_v1_fn compute_v1, graphics_v1;
    /* MIG (all optional: drivers before R450 have none of them). */
    nvmlReturn_t (*mig_mode)(nvmlDevice_t, unsigned int *, unsigned int *);
    nvmlReturn_t (*mig_max)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*mig_handle)(nvmlDevice_t, unsigned int, nvmlDevice_t *);
    /* /dev/nvidiaN of a GPU: what Slurm's GPU ids count (optional). */
    nvmlReturn_t (*minor_number)(nvmlDevice_t, unsigned int *);
    /* Sensors (optional: a driver or a MIG instance without them leaves
     * their VRAM_HAVE_* bits clear). */
    nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*power_usage)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*power_limit)(nvmlDevice_t, unsigned int *);
} nvml_api;

#define MAX_DEVICES 64
#define LOST_AFTER 3                /* failed queries in a row that mean lost */

/* One device as vram (and CUDA) numbers it. */
typedef struct nvml_entry {
    unsigned gpu;                   /* NVML index of the physical GPU */
    unsigned minor;                 /* its /dev/nvidiaN (the index when unknown) */
    int mig;                        /* MIG device index on it, or -1 */
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    unsigned errors;                /* failed queries in a row */
    bool lost;
    bool v1_only;                   /* v2 memory refused on this device: use v1 */
    char lost_why[200];             /* the error that made it lost */
} nvml_entry;

typedef struct nvml_backend {
    vram_backend base;
    void *lib;
    char lib_name[256];
    nvml_api api;
    unsigned count;
    nvml_entry dev[MAX_DEVICES];
    bool told_foreign;              /* the container notice was logged */
} nvml_backend;

static nvml_backend *to_nvml(vram_backend *be)
{
    return (nvml_backend *)be;
}

static const char *nvml_text(const nvml_backend *n, nvmlReturn_t r)
{
    const char *s = n->api.error_string ? n->api.error_string(r) : NULL;
    return s ? s : "unknown NVML error";
}

/* Maps an NVML return to a vram code with a message naming the call. */
static int nvml_fail(const nvml_backend *n, const char *call, nvmlReturn_t r)
{
    int err;
    switch (r) {
    case NVML_ERROR_INVALID_ARGUMENT:
    case NVML_ERROR_NOT_FOUND:
        err = VRAM_ENODEV;
        break;
    case NVML_ERROR_NOT_SUPPORTED:
    case NVML_ERROR_FUNCTION_NOT_FOUND:
        err = VRAM_ENOTSUP;
        break;
    case NVML_ERROR_NO_PERMISSION:
        err = VRAM_EPERM;
        break;
    case NVML_ERROR_LIBRARY_NOT_FOUND:
        err = VRAM_ENOLIB;
        break;
    case NVML_ERROR_GPU_IS_LOST:
        err = VRAM_ELOST;
        break;
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return vram__fail(VRAM_EDRIVER, "NVML %s failed: %s (NVML error %d): a version "
                          "mismatch between the NVIDIA library and the loaded kernel module, "
                          "as after a driver update without a reboot", call, nvml_text(n, r), r);
    default:
        err = VRAM_EDRIVER;
    }
    return vram__fail(err, "NVML %s failed: %s (NVML error %d)", call, nvml_text(n, r), r);
}

/* Resolves the first of the names that the library has. */
static void *sym(void *lib, const char *a, const char *b)
{
    void *p = dlsym(lib, a);
    if (!p && b)
        p = dlsym(lib, b);
    return p;
}

static int resolve(nvml_backend *n)
{
    nvml_api *a = &n->api;
    void *l = n->lib;
    *(void **)&a->init = sym(l, "nvmlInit_v2", "nvmlInit");
    *(void **)&a->shutdown = sym(l, "nvmlShutdown", NULL);
    *(void **)&a->error_string = sym(l, "nvmlErrorString", NULL);
    *(void **)&a->device_count = sym(l, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    *(void **)&a->handle_by_index = sym(l, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    *(void **)&a->name = sym(l, "nvmlDeviceGetName", NULL);
    *(void **)&a->uuid = sym(l, "nvmlDeviceGetUUID", NULL);
    *(void **)&a->memory_v2 = sym(l, "nvmlDeviceGetMemoryInfo_v2", NULL);
    *(void **)&a->memory_v1 = sym(l, "nvmlDeviceGetMemoryInfo", NULL);
    *(void **)&a->compute_v3 = sym(l, "nvmlDeviceGetComputeRunningProcesses_v3", NULL);
    *(void **)&a->compute_v2 = sym(l, "nvmlDeviceGetComputeRunningProcesses_v2", NULL);
    *(void **)&a->compute_v1 = sym(l, "nvmlDeviceGetComputeRunningProcesses", NULL);
    *(void **)&a->graphics_v3 = sym(l, "nvmlDeviceGetGraphicsRunningProcesses_v3", NULL);
    *(void **)&a->graphics_v2 = sym(l, "nvmlDeviceGetGraphicsRunningProcesses_v2", NULL);
    *(void **)&a->graphics_v1 = sym(l, "nvmlDeviceGetGraphicsRunningProcesses", NULL);
    *(void **)&a->mps_v3 = sym(l, "nvmlDeviceGetMPSComputeRunningProcesses_v3", NULL);
    *(void **)&a->mig_mode = sym(l, "nvmlDeviceGetMigMode", NULL);
    *(void **)&a->mig_max = sym(l, "nvmlDeviceGetMaxMigDeviceCount", NULL);
    *(void **)&a->mig_handle = sym(l, "nvmlDeviceGetMigDeviceHandleByIndex", NULL);
    *(void **)&a->minor_number = sym(l, "nvmlDeviceGetMinorNumber", NULL);
    *(void **)&a->utilization = sym(l, "nvmlDeviceGetUtilizationRates", NULL);
    *(void **)&a->temperature = sym(l, "nvmlDeviceGetTemperature", NULL);
    *(void **)&a->power_usage = sym(l, "nvmlDeviceGetPowerUsage", NULL);
    *(void **)&a->power_limit = sym(l, "nvmlDeviceGetEnforcedPowerLimit", NULL);

    const char *missing = !a->init ? "nvmlInit_v2"
                        : !a->shutdown ? "nvmlShutdown"
                        : !a->device_count ? "nvmlDeviceGetCount_v2"
                        : !a->handle_by_index ? "nvmlDeviceGetHandleByIndex_v2"
                        : !a->memory_v2 && !a->memory_v1 ? "nvmlDeviceGetMemoryInfo" : NULL;
    if (missing)
        return vram__fail(VRAM_ENOLIB, "%s has no %s: not a usable NVML", n->lib_name, missing);
    return 0;
}

static int load_library(nvml_backend *n, const char *path)
{
    const char *candidates[] = { "libnvidia-ml.so.1", "libnvidia-ml.so" };
    char why[512] = "";
    if (*path) {
        n->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        vram__strlcpy(n->lib_name, path, sizeof(n->lib_name));
        if (!n->lib)
            vram__strlcpy(why, dlerror(), sizeof(why));
    } else {
        for (size_t i = 0; i < VRAM__ARRAY_LEN(candidates) && !n->lib; i++) {
            n->lib = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
            vram__strlcpy(n->lib_name, candidates[i], sizeof(n->lib_name));
            if (!n->lib && i == 0)
                vram__strlcpy(why, dlerror(), sizeof(why));
        }
    }
    if (!n->lib)
        return vram__fail(VRAM_ENOLIB, "no NVIDIA driver: %s", why);
    return 0;
}

/* ---- which devices are ours ----------------------------------------------- */

/* Adds the device(s) of physical GPU `gpu`: its MIG instances when MIG is
 * on (none when it has no instance yet), else the GPU itself. */
static void add_gpu(nvml_backend *n, unsigned gpu, nvml_entry *all, unsigned *count)
{
    nvmlDevice_t h;
    bool have = n->api.handle_by_index(gpu, &h) == NVML_SUCCESS;
    unsigned cur = 0, pend = 0, max = 0, minor = gpu;
    if (have && n->api.minor_number && n->api.minor_number(h, &minor) != NVML_SUCCESS)
        minor = gpu;
    if (have && n->api.mig_mode && n->api.mig_max && n->api.mig_handle &&
        n->api.mig_mode(h, &cur, &pend) == NVML_SUCCESS && cur == NVML_DEVICE_MIG_ENABLE &&
        n->api.mig_max(h, &max) == NVML_SUCCESS) {
        for (unsigned m = 0; m < max && *count < MAX_DEVICES; m++) {
            nvmlDevice_t mh;
            if (n->api.mig_handle(h, m, &mh) != NVML_SUCCESS)
                continue;           /* NOT_FOUND: no instance at this index */
            nvml_entry *e = &all[(*count)++];
            memset(e, 0, sizeof(*e));
            e->gpu = gpu;
            e->minor = minor;
            e->mig = (int)m;
            if (!n->api.uuid || n->api.uuid(mh, e->uuid, sizeof(e->uuid)) != NVML_SUCCESS)
                e->uuid[0] = '\0';
        }
        return;
    }
    if (*count >= MAX_DEVICES)
        return;
    nvml_entry *e = &all[(*count)++];
    memset(e, 0, sizeof(*e));
    e->gpu = gpu;
    e->minor = minor;
    e->mig = -1;
    if (!have || !n->api.uuid || n->api.uuid(h, e->uuid, sizeof(e->uuid)) != NVML_SUCCESS)
        e->uuid[0] = '\0';
    e->uuid[sizeof(e->uuid) - 1] = '\0';
}

/* The entry one CUDA_VISIBLE_DEVICES token names, or -1.  An index is the
 * physical GPU of that NVML index (the order CUDA uses with
 * CUDA_DEVICE_ORDER=PCI_BUS_ID, which vram gives its jobs); Slurm's GPU ids
 * (`by_minor`) are gres.conf's /dev/nvidiaN numbers, matched to the GPU
 * whose device file that is, whatever NVML's order; a UUID may be cut
 * short, as CUDA allows, when the prefix names one device only. */
static int find_token(const nvml_entry *all, unsigned count, const char *tok, bool by_minor)
{
    char *end;
    unsigned long idx = strtoul(tok, &end, 10);
    if (end != tok && *end == '\0') {
        for (unsigned i = 0; i < count; i++)
            if ((by_minor ? all[i].minor : all[i].gpu) == idx && all[i].mig < 0)
                return (int)i;
        return -1;
    }
    if (strncmp(tok, "GPU-", 4) != 0 && strncmp(tok, "MIG-", 4) != 0)
        return -1;
    int found = -1;
    for (unsigned i = 0; i < count; i++)
        if (!strncmp(all[i].uuid, tok, strlen(tok))) {
            if (found >= 0)
                return -1;          /* ambiguous prefix */
            found = (int)i;
        }
    return found;
}

/* Which variable restricts the devices, and its value; NULL when none. */
static const char *visible_spec(const char **var)
{
    static const char *const vars[] = { "CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS",
                                        "SLURM_JOB_GPUS" };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(vars); i++) {
        const char *v = getenv(vars[i]);
        if (v) {
            *var = vars[i];
            return v;
        }
    }
    return NULL;
}

/* Keeps the devices the spec names, in its order; CUDA ignores the rest of
 * the list from the first token that names nothing, and so do we. */
static unsigned keep_visible(nvml_backend *n, const nvml_entry *all, unsigned count,
                             const char *spec, bool by_minor)
{
    char copy[1024];
    vram__strlcpy(copy, spec, sizeof(copy));
    unsigned kept = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok && kept < MAX_DEVICES;
         tok = strtok_r(NULL, ", ", &save)) {
        int i = find_token(all, count, tok, by_minor);
        if (i < 0)
            break;
        bool dup = false;
        for (unsigned k = 0; k < kept; k++)
            dup |= n->dev[k].gpu == all[i].gpu && n->dev[k].mig == all[i].mig;
        if (!dup)
            n->dev[kept++] = all[i];
    }
    return kept;
}

static int enumerate(nvml_backend *n, unsigned physical)
{
    nvml_entry *all = calloc(MAX_DEVICES, sizeof(*all));
    if (!all)
        return vram__fail(VRAM_ENOMEM, "out of host memory listing GPUs");
    unsigned count = 0;
    for (unsigned g = 0; g < physical; g++)
        add_gpu(n, g, all, &count);
    const char *var = NULL, *spec = visible_spec(&var);
    const char *order = getenv("CUDA_DEVICE_ORDER");
    if (spec && !strcmp(var, "CUDA_VISIBLE_DEVICES") && strpbrk(spec, "0123456789") &&
        strncmp(spec, "GPU-", 4) && strncmp(spec, "MIG-", 4) &&
        physical > 1 && (!order || strcmp(order, "PCI_BUS_ID")))
        vram__log(VRAM__LOG_WARN, "%s=%.200s counts devices in CUDA's order, which is the bus "
                  "order (NVML's) only with CUDA_DEVICE_ORDER=PCI_BUS_ID; vram reads the indices "
                  "as bus order: set it, or name the devices by UUID", var, spec);
    if (spec) {
        n->count = keep_visible(n, all, count, spec, strncmp(var, "SLURM_", 6) == 0);
    } else {
        memcpy(n->dev, all, count * sizeof(*all));
        n->count = count;
    }
    free(all);
    if (n->count == 0 && spec)
        return vram__fail(VRAM_ENODEV, "NVML (%s) sees %u GPU(s) but %s='%.200s' leaves none "
                          "(accepted: indices, GPU-/MIG- UUIDs)", n->lib_name, physical, var, spec);
    if (n->count == 0)
        return vram__fail(VRAM_ENODEV, "NVML (%s) loaded but found no GPU%s", n->lib_name,
                          physical ? " CUDA can use (MIG is on and has no instance)" : "");
    return 0;
}

static int nvml_open(vram_backend *be, const vram_options *opts)
{
    nvml_backend *n = to_nvml(be);
    int rc = load_library(n, vram__opt_str(opts, VRAM__OPT_NVML_LIBRARY));
    if (rc)
        return rc;
    if ((rc = resolve(n)))
        goto fail;
    nvmlReturn_t r = n->api.init();
    if (r != NVML_SUCCESS) {
        rc = nvml_fail(n, "nvmlInit", r);
        goto fail;
    }
    unsigned physical = 0;
    r = n->api.device_count(&physical);
    if (r != NVML_SUCCESS) {
        rc = nvml_fail(n, "nvmlDeviceGetCount", r);
        n->api.shutdown();
        goto fail;
    }
    if ((rc = enumerate(n, physical))) {
        n->api.shutdown();
        goto fail;
    }
    return 0;
fail:
    dlclose(n->lib);
    return rc;
}

static void nvml_close(vram_backend *be)
{
    nvml_backend *n = to_nvml(be);
    n->api.shutdown();
    dlclose(n->lib);
}

static int nvml_device_count(vram_backend *be, unsigned *count_out)
{
    *count_out = to_nvml(be)->count;
    return 0;
}

static int get_handle(nvml_backend *n, unsigned idx, nvmlDevice_t *h)
{
    if (idx >= n->count)
        return vram__fail(VRAM_ENODEV, "no device %u: NVML reports %u", idx, n->count);
    const nvml_entry *e = &n->dev[idx];
    if (e->lost)
        return vram__fail(VRAM_ELOST, "GPU %u (%s) is lost (%s): it takes no work until the "
                          "GPU is reset and vram restarted", idx, e->uuid, e->lost_why);
    nvmlReturn_t r = n->api.handle_by_index(e->gpu, h);
    if (r != NVML_SUCCESS)
        return nvml_fail(n, "nvmlDeviceGetHandleByIndex", r);
    if (e->mig < 0)
        return 0;
    nvmlDevice_t parent = *h;
    r = n->api.mig_handle(parent, (unsigned)e->mig, h);
    return r == NVML_SUCCESS ? 0 : nvml_fail(n, "nvmlDeviceGetMigDeviceHandleByIndex", r);
}

/* Counts a failed query; the device is lost at GPU_IS_LOST or after
 * LOST_AFTER failures in a row.  Returns rc, or VRAM_ELOST once lost. */
static int note_result(nvml_backend *n, unsigned idx, int rc)
{
    if (idx >= n->count)
        return rc;
    nvml_entry *e = &n->dev[idx];
    if (rc == 0 || rc == VRAM_ENOTSUP || rc == VRAM_EPERM || rc == VRAM_ENOMEM) {
        if (rc == 0)
            e->errors = 0;
        return rc;
    }
    if (e->lost)
        return rc;
    if (rc == VRAM_ELOST || ++e->errors >= LOST_AFTER) {
        vram__strlcpy(e->lost_why, vram_last_error(), sizeof(e->lost_why));
        e->lost = true;
        vram__log(VRAM__LOG_ERROR, "GPU %u (%s) is lost, capacity 0 from now on: %s", idx,
                  e->uuid, e->lost_why);
        return vram__fail(VRAM_ELOST, "GPU %u (%s) is lost: %s", idx, e->uuid, e->lost_why);
    }
    return rc;
}

/* Fills the memory fields through v2, or v1 where v2 is missing or refused. */
static int query_memory(nvml_backend *n, unsigned idx, nvmlDevice_t h, vram_device_info *out)
{
    bool try_v2 = n->api.memory_v2 && !n->dev[idx].v1_only;
    if (try_v2) {
        nvmlMemory_v2_t m;
        memset(&m, 0, sizeof(m));
        m.version = nvmlMemory_v2;
        nvmlReturn_t r = n->api.memory_v2(h, &m);
        if (r == NVML_SUCCESS) {
            out->total_bytes = m.total;
            out->used_bytes = m.used;
            out->free_bytes = m.free;
            out->driver_reserved_bytes = m.reserved;
            out->memory_api = 2;
            out->have |= VRAM_HAVE_MEMORY | VRAM_HAVE_RESERVED;
            return 0;
        }
        if (r != NVML_ERROR_NOT_SUPPORTED && r != NVML_ERROR_FUNCTION_NOT_FOUND &&
            r != NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
            return nvml_fail(n, "nvmlDeviceGetMemoryInfo_v2", r);
        n->dev[idx].v1_only = true;
    }
    if (!n->api.memory_v1)
        return vram__fail(VRAM_ENOTSUP, "NVML refused nvmlDeviceGetMemoryInfo_v2 and has no v1 call");
    nvmlMemory_t m;
    memset(&m, 0, sizeof(m));
    nvmlReturn_t r = n->api.memory_v1(h, &m);
    if (r != NVML_SUCCESS)
        return nvml_fail(n, "nvmlDeviceGetMemoryInfo", r);
    out->total_bytes = m.total;
    out->used_bytes = m.used;       /* v1: includes what the driver reserves */
    out->free_bytes = m.free;
    out->memory_api = 1;
    out->have |= VRAM_HAVE_MEMORY;
    return 0;
}

/* Utilisation, temperature and power where the driver has them; a refusal
 * (NOT_SUPPORTED on MIG instances and some boards) only leaves the bit clear. */
static void query_sensors(const nvml_backend *n, nvmlDevice_t h, vram_device_info *out)
{
    nvmlUtilization_t u;
    unsigned v;
    if (n->api.utilization && n->api.utilization(h, &u) == NVML_SUCCESS && u.gpu <= 100) {
        out->util_percent = u.gpu;
        out->have |= VRAM_HAVE_UTIL;
    }
    if (n->api.temperature && n->api.temperature(h, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS &&
        v < 1000) {
        out->temperature_c = (int)v;
        out->have |= VRAM_HAVE_TEMP;
    }
    if (n->api.power_usage && n->api.power_usage(h, &v) == NVML_SUCCESS) {
        out->power_mw = v;
        out->have |= VRAM_HAVE_POWER;
        if (n->api.power_limit && n->api.power_limit(h, &v) == NVML_SUCCESS)
            out->power_limit_mw = v;
    }
}

static int query(nvml_backend *n, unsigned idx, vram_device_info *out)
{
    nvmlDevice_t h;
    int rc = get_handle(n, idx, &h);
    if (rc)
        return rc;
    if (n->dev[idx].mig >= 0)
        out->have |= VRAM_HAVE_MIG;
    if (n->api.name && n->api.name(h, out->name, sizeof(out->name)) == NVML_SUCCESS)
        out->have |= VRAM_HAVE_NAME;
    else
        vram__strlcpy(out->name, "NVIDIA GPU", sizeof(out->name));
    if (n->api.uuid && n->api.uuid(h, out->uuid, sizeof(out->uuid)) == NVML_SUCCESS)
        out->have |= VRAM_HAVE_UUID;
    out->name[sizeof(out->name) - 1] = out->uuid[sizeof(out->uuid) - 1] = '\0';
    if (n->api.compute_v3 || n->api.compute_v2 || n->api.compute_v1)
        out->have |= VRAM_HAVE_PROCS;
    query_sensors(n, h, out);
    return query_memory(n, idx, h, out);
}

static int nvml_device_query(vram_backend *be, unsigned idx, vram_device_info *out)
{
    nvml_backend *n = to_nvml(be);
    if (idx >= n->count)
        return vram__fail(VRAM_ENODEV, "no device %u: NVML reports %u", idx, n->count);
    /* The UUID read at open: a lost device is still named by it. */
    vram__strlcpy(out->uuid, n->dev[idx].uuid, sizeof(out->uuid));
    return note_result(n, idx, query(n, idx, out));
}

/* The GPU's minor number read at open (of a MIG instance, its GPU's). */
static int nvml_device_minor(vram_backend *be, unsigned idx, unsigned *minor_out)
{
    nvml_backend *n = to_nvml(be);
    if (idx >= n->count)
        return vram__fail(VRAM_ENODEV, "no device %u: NVML reports %u", idx, n->count);
    *minor_out = n->dev[idx].minor;
    return 0;
}

/* ---- processes -------------------------------------------------------------- */

#define PROC_TRIES 6

/* One process-list call with a growing buffer.  `v1` selects the older
 * structure.  Returns 0 with *list (malloc'd) and *count, or an error. */
static int list_call(const nvml_backend *n, const char *what, nvmlDevice_t h, proc_v2_fn f2,
                     proc_v1_fn f1, nvmlProcessInfo_v2_t **list, unsigned *count)
{
    unsigned cap = 16;
    *list = NULL;
    *count = 0;
    for (int tries = 0; tries < PROC_TRIES; tries++) {
        size_t elem = f2 ? sizeof(nvmlProcessInfo_v2_t) : sizeof(nvmlProcessInfo_v1_t);
        void *buf = calloc(cap, elem);
        if (!buf)
            return vram__fail(VRAM_ENOMEM, "out of host memory listing processes");
        unsigned got = cap;
        nvmlReturn_t r = f2 ? f2(h, &got, buf) : f1(h, &got, buf);
        if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
            free(buf);
            /* Processes come and go between calls: leave room to spare. */
            cap = (got > cap ? got : cap) * 2 + 8;
            continue;
        }
        if (r != NVML_SUCCESS) {
            free(buf);
            return nvml_fail(n, what, r);
        }
        if (got > cap)
            got = cap;
        if (!f2) {                  /* widen v1 records to the v2 layout */
            nvmlProcessInfo_v1_t *v1 = buf;
            nvmlProcessInfo_v2_t *v2 = calloc(got ? got : 1, sizeof(*v2));
            if (!v2) {
                free(buf);
                return vram__fail(VRAM_ENOMEM, "out of host memory listing processes");
            }
            for (unsigned i = 0; i < got; i++) {
                v2[i].pid = v1[i].pid;
                v2[i].usedGpuMemory = v1[i].usedGpuMemory;
            }
            free(buf);
            buf = v2;
        }
        *list = buf;
        *count = got;
        return 0;
    }
    return vram__fail(VRAM_EAGAIN, "NVML %s kept answering 'insufficient size' (%d tries)", what,
                      PROC_TRIES);
}

enum { KIND_COMPUTE, KIND_GRAPHICS, KIND_MPS };

/* Compute, graphics or MPS processes, through the newest call there is. */
static int list_kind(const nvml_backend *n, nvmlDevice_t h, int kind,
                     nvmlProcessInfo_v2_t **list, unsigned *count)
{
    const nvml_api *a = &n->api;
    if (kind == KIND_MPS)
        return a->mps_v3 ? list_call(n, "nvmlDeviceGetMPSComputeRunningProcesses_v3", h,
                                     a->mps_v3, NULL, list, count)
                         : VRAM_ENOTSUP;
    bool compute = kind == KIND_COMPUTE;
    proc_v2_fn v3 = compute ? a->compute_v3 : a->graphics_v3;
    proc_v2_fn v2 = compute ? a->compute_v2 : a->graphics_v2;
    proc_v1_fn v1 = compute ? a->compute_v1 : a->graphics_v1;
    const char *name = compute ? "nvmlDeviceGetComputeRunningProcesses"
                               : "nvmlDeviceGetGraphicsRunningProcesses";
    int rc = VRAM_ENOTSUP;
    if (v3)
        rc = list_call(n, name, h, v3, NULL, list, count);
    if (rc == VRAM_ENOTSUP && v2)
        rc = list_call(n, name, h, v2, NULL, list, count);
    if (rc == VRAM_ENOTSUP && v1)
        rc = list_call(n, name, h, NULL, v1, list, count);
    if (rc == VRAM_ENOTSUP && !v3 && !v2 && !v1)
        rc = vram__fail(VRAM_ENOTSUP, "this NVML cannot list %s processes",
                        compute ? "compute" : "graphics");
    return rc;
}

/* Whether the pid NVML gave is a process this /proc shows.  In a container
 * without --pid=host NVML still answers host pids, which resolve to nothing
 * here (or, by chance, to an unrelated process of the container). */
static bool pid_visible(uint32_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%u", pid);
    return access(path, F_OK) == 0;
}

/* Adds a record to out, merging a pid seen in several lists. */
static void add_proc(nvml_backend *n, vram_proc *buf, size_t cap, size_t *count, unsigned idx,
                     const nvmlProcessInfo_v2_t *p)
{
    for (size_t i = 0; i < *count && i < cap; i++)
        if (buf[i].pid == p->pid) {
            if (p->usedGpuMemory != NVML_VALUE_NOT_AVAILABLE && p->usedGpuMemory > buf[i].used_bytes) {
                buf[i].used_bytes = p->usedGpuMemory;
                buf[i].have |= VRAM_HAVE_PROC_MEM;
            }
            return;
        }
    if (*count < cap) {
        vram_proc *o = &buf[*count];
        memset(o, 0, sizeof(*o));
        o->pid = p->pid;
        o->device = idx;
        if (p->usedGpuMemory != NVML_VALUE_NOT_AVAILABLE) {
            o->used_bytes = p->usedGpuMemory;
            o->have = VRAM_HAVE_PROC_MEM;
        }
        vram__proc_name(p->pid, o->name, sizeof(o->name));
        if (!pid_visible(p->pid)) {
            o->have |= VRAM_HAVE_PROC_FOREIGN;
            if (!n->told_foreign) {
                n->told_foreign = true;
                vram__log(VRAM__LOG_WARN, "NVML lists pid %u on GPU %u, which this /proc does "
                          "not have: vram runs in another pid namespace (a container "
                          "without --pid=host?); jobs are accounted per lease from the "
                          "device's used memory instead of per process", p->pid, idx);
            }
        }
    }
    (*count)++;
}

static int nvml_process_list(vram_backend *be, unsigned idx, vram_proc *buf, size_t cap,
                             size_t *count_out)
{
    nvml_backend *n = to_nvml(be);
    nvmlDevice_t h;
    int rc = get_handle(n, idx, &h);
    if (rc)
        return rc;
    size_t count = 0;
    for (int kind = KIND_COMPUTE; kind <= KIND_MPS; kind++) {
        nvmlProcessInfo_v2_t *list;
        unsigned got;
        rc = list_kind(n, h, kind, &list, &got);
        if (kind != KIND_COMPUTE && (rc == VRAM_ENOTSUP || rc == VRAM_EPERM)) {
            vram__clear_error();
            continue;               /* graphics and MPS lists are optional */
        }
        if (rc)
            return note_result(n, idx, rc);
        for (unsigned i = 0; i < got; i++)
            add_proc(n, buf, cap, &count, idx, &list[i]);
        free(list);
    }
    *count_out = count;
    return count > cap ? VRAM_ERANGE : 0;
}

const vram_backend_ops vram__nvml_ops = {
    .version = VRAM_BACKEND_OPS_VERSION,
    .name = "nvml",
    .instance_size = sizeof(nvml_backend),
    .open = nvml_open,
    .close = nvml_close,
    .device_count = nvml_device_count,
    .device_query = nvml_device_query,
    .process_list = nvml_process_list,
    .device_minor = nvml_device_minor,
};
