/* SPDX-License-Identifier: MIT */
/*
 * tests/stubs/nvml_stub.c - a stand-in libnvidia-ml.so.1 for the tests.
 *
 * Built three ways: the full stub (a recent driver), -DSTUB_OLD_DRIVER (no
 * nvmlInit_v2, no memory _v2, no _v2/_v3 process calls) and -DSTUB_BROKEN
 * (no nvmlDeviceGetCount at all).  It reads its script from VRAM_STUB_NVML at
 * every nvmlInit, as ';'-separated settings:
 *
 *   devices=NAME:TOTAL_MIB:USED_MIB:RESERVED_MIB|NAME:...   (default: one
 *           "Stub GPU" of 16384 MiB, 1024 used, 512 reserved)
 *   procsN=PID:MIB,PID:MIB   processes on device N (MIB "na": not available)
 *   grow=K        the list grows by K between the size call and the next
 *   fail_init=E fail_count=E fail_handle=E fail_memory=E fail_procs=E
 *                 make that call return NVML error E
 *   v2=refuse     the memory _v2 call answers NOT_SUPPORTED
 *   migN=TOTAL_MIB:USED_MIB:RESERVED_MIB|...   device N is in MIG mode with
 *                 these instances (UUIDs MIG-stub-000N-I); its parent handle
 *                 reports the whole card
 *   mig_noperm=1  a MIG-enabled parent refuses memory and process queries
 *                 with NO_PERMISSION, as it does for users without privileges
 *   mpsN=PID:MIB,...   MPS clients on device N (nvmlDeviceGetMPSCompute-
 *                 RunningProcesses_v3)
 *   lost=N        every query on device N answers GPU_IS_LOST (15)
 *   used_step=MIB every memory query of a whole card adds MIB to its used
 *                 memory (up to what is free): a job allocating
 *   fail_init=18  is a driver/library version mismatch, as after an update
 *   minors=M0,M1,...   each device's /dev/nvidiaN number (nvmlDeviceGet-
 *                 MinorNumber; default: its index), for device files that
 *                 do not follow the PCI order
 *   sensorsN=UTIL:TEMP_C:POWER_W[:LIMIT_W]   device N's utilisation,
 *                 temperature and power (nvmlDeviceGetUtilizationRates,
 *                 GetTemperature, GetPowerUsage, GetEnforcedPowerLimit);
 *                 without it those calls answer NOT_SUPPORTED (3)
 *
 * PIDs in procsN/mpsN that do not exist here stand for the host pids NVML
 * gives inside a container.
 *
 * Like the driver, the memory _v2 call refuses a structure whose version
 * field is not nvmlMemory_v2.  vram_stub_calls(NAME) tells the tests how
 * often an entry point was called.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef struct { unsigned long long total, free, used; } mem_v1;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } mem_v2;
typedef struct { unsigned int pid; unsigned long long used; } proc_v1;
typedef struct { unsigned int pid; unsigned long long used; unsigned int gi, ci; } proc_v2;

#define MEM_V2_VERSION ((unsigned int)(sizeof(mem_v2) | (2u << 24)))
#define MAX_DEV 8
#define MAX_PROC 256
#define MAX_MIG 7
#define MIB (1024ull * 1024ull)

static struct {
    int ndev;
    char name[MAX_DEV][96];
    unsigned long long total[MAX_DEV], used[MAX_DEV], reserved[MAX_DEV];
    int nproc[MAX_DEV];
    unsigned pid[MAX_DEV][MAX_PROC];
    unsigned long long pmem[MAX_DEV][MAX_PROC];
    int grow, grown;
    int fail_init, fail_count, fail_handle, fail_memory, fail_procs;
    int v2_refuse;
    int initialised;
    int nmig[MAX_DEV], mig_on[MAX_DEV];
    unsigned long long mig_total[MAX_DEV][MAX_MIG], mig_used[MAX_DEV][MAX_MIG],
        mig_reserved[MAX_DEV][MAX_MIG];
    int mig_noperm;
    int nmps[MAX_DEV];
    unsigned mps_pid[MAX_DEV][MAX_PROC];
    unsigned long long mps_mem[MAX_DEV][MAX_PROC];
    int lost;                       /* device index + 1, or 0 */
    int minor[MAX_DEV];             /* /dev/nvidiaN + 1; 0: the index */
    unsigned long long used_step;
    int sensors[MAX_DEV];
    unsigned util[MAX_DEV], temp[MAX_DEV], power_mw[MAX_DEV], limit_mw[MAX_DEV];
} st;

static struct { const char *name; int count; } calls[32];

static void count_call(const char *name)
{
    for (int i = 0; i < 32; i++) {
        if (!calls[i].name) {
            calls[i].name = name;
            calls[i].count = 1;
            return;
        }
        if (!strcmp(calls[i].name, name)) {
            calls[i].count++;
            return;
        }
    }
}

EXPORT int vram_stub_calls(const char *name)
{
    for (int i = 0; i < 32 && calls[i].name; i++)
        if (!strcmp(calls[i].name, name))
            return calls[i].count;
    return 0;
}

static void parse_devices(char *v)
{
    st.ndev = 0;
    for (char *save = NULL, *d = strtok_r(v, "|", &save); d && st.ndev < MAX_DEV;
         d = strtok_r(NULL, "|", &save)) {
        char name[96];
        unsigned long long t = 0, u = 0, r = 0;
        if (sscanf(d, "%95[^:]:%llu:%llu:%llu", name, &t, &u, &r) < 2)
            continue;
        strcpy(st.name[st.ndev], name);
        st.total[st.ndev] = t * MIB;
        st.used[st.ndev] = u * MIB;
        st.reserved[st.ndev] = r * MIB;
        st.ndev++;
    }
}

static void parse_procs(int dev, char *v)
{
    for (char *save = NULL, *p = strtok_r(v, ",", &save); p && st.nproc[dev] < MAX_PROC;
         p = strtok_r(NULL, ",", &save)) {
        unsigned pid;
        char mib[32];
        if (sscanf(p, "%u:%31s", &pid, mib) != 2)
            continue;
        int n = st.nproc[dev]++;
        st.pid[dev][n] = pid;
        st.pmem[dev][n] = !strcmp(mib, "na") ? ~0ull : strtoull(mib, NULL, 10) * MIB;
    }
}

static void parse_mig(int dev, char *v)
{
    st.mig_on[dev] = 1;
    for (char *save = NULL, *d = strtok_r(v, "|", &save); d && st.nmig[dev] < MAX_MIG;
         d = strtok_r(NULL, "|", &save)) {
        unsigned long long t = 0, u = 0, r = 0;
        if (sscanf(d, "%llu:%llu:%llu", &t, &u, &r) < 1)
            continue;
        int m = st.nmig[dev]++;
        st.mig_total[dev][m] = t * MIB;
        st.mig_used[dev][m] = u * MIB;
        st.mig_reserved[dev][m] = r * MIB;
    }
}

static void parse_mps(int dev, char *v)
{
    for (char *save = NULL, *p = strtok_r(v, ",", &save); p && st.nmps[dev] < MAX_PROC;
         p = strtok_r(NULL, ",", &save)) {
        unsigned pid;
        unsigned long long mib;
        if (sscanf(p, "%u:%llu", &pid, &mib) != 2)
            continue;
        int n = st.nmps[dev]++;
        st.mps_pid[dev][n] = pid;
        st.mps_mem[dev][n] = mib * MIB;
    }
}

static void load_script(void)
{
    memset(&st, 0, sizeof(st));
    st.ndev = 1;
    strcpy(st.name[0], "Stub GPU");
    st.total[0] = 16384 * MIB;
    st.used[0] = 1024 * MIB;
    st.reserved[0] = 512 * MIB;
    const char *env = getenv("VRAM_STUB_NVML");
    if (!env)
        return;
    char *copy = strdup(env);
    for (char *save = NULL, *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        int dev;
        if (!strcmp(kv, "devices"))
            parse_devices(v);
        else if (sscanf(kv, "procs%d", &dev) == 1 && dev >= 0 && dev < MAX_DEV)
            parse_procs(dev, v);
        else if (!strcmp(kv, "grow"))
            st.grow = atoi(v);
        else if (!strcmp(kv, "fail_init"))
            st.fail_init = atoi(v);
        else if (!strcmp(kv, "fail_count"))
            st.fail_count = atoi(v);
        else if (!strcmp(kv, "fail_handle"))
            st.fail_handle = atoi(v);
        else if (!strcmp(kv, "fail_memory"))
            st.fail_memory = atoi(v);
        else if (!strcmp(kv, "fail_procs"))
            st.fail_procs = atoi(v);
        else if (!strcmp(kv, "v2"))
            st.v2_refuse = !strcmp(v, "refuse");
        else if (sscanf(kv, "mig%d", &dev) == 1 && dev >= 0 && dev < MAX_DEV)
            parse_mig(dev, v);
        else if (sscanf(kv, "mps%d", &dev) == 1 && dev >= 0 && dev < MAX_DEV)
            parse_mps(dev, v);
        else if (!strcmp(kv, "mig_noperm"))
            st.mig_noperm = atoi(v);
        else if (!strcmp(kv, "lost"))
            st.lost = atoi(v) + 1;
        else if (!strcmp(kv, "minors")) {
            char *at = NULL;
            int i = 0;
            for (char *t = strtok_r(v, ",", &at); t && i < MAX_DEV; t = strtok_r(NULL, ",", &at))
                st.minor[i++] = atoi(t) + 1;
        } else if (!strcmp(kv, "used_step"))
            st.used_step = strtoull(v, NULL, 10) * MIB;
        else if (sscanf(kv, "sensors%d", &dev) == 1 && dev >= 0 && dev < MAX_DEV) {
            unsigned u = 0, t = 0, p = 0, l = 0;
            if (sscanf(v, "%u:%u:%u:%u", &u, &t, &p, &l) >= 3) {
                st.sensors[dev] = 1;
                st.util[dev] = u;
                st.temp[dev] = t;
                st.power_mw[dev] = p * 1000;
                st.limit_mw[dev] = l * 1000;
            }
        }
    }
    free(copy);
}

static int init_common(void)
{
    load_script();
    if (st.fail_init)
        return st.fail_init;
    st.initialised = 1;
    return 0;
}

#ifndef STUB_OLD_DRIVER
EXPORT int nvmlInit_v2(void) { count_call("nvmlInit_v2"); return init_common(); }
#endif
EXPORT int nvmlInit(void) { count_call("nvmlInit"); return init_common(); }
EXPORT int nvmlShutdown(void) { count_call("nvmlShutdown"); st.initialised = 0; return 0; }

EXPORT const char *nvmlErrorString(int r)
{
    switch (r) {
    case 0: return "Success";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 7: return "Insufficient Size";
    case 9: return "Driver Not Loaded";
    case 4: return "Insufficient Permissions";
    case 6: return "Not Found";
    case 15: return "GPU is lost";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    case 25: return "Argument Version Mismatch";
    default: return "Unknown Error";
    }
}

#ifndef STUB_BROKEN
static int get_count(unsigned *n)
{
    if (!st.initialised)
        return 1;
    if (st.fail_count)
        return st.fail_count;
    *n = (unsigned)st.ndev;
    return 0;
}
#ifndef STUB_OLD_DRIVER
EXPORT int nvmlDeviceGetCount_v2(unsigned *n) { count_call("nvmlDeviceGetCount_v2"); return get_count(n); }
#endif
EXPORT int nvmlDeviceGetCount(unsigned *n) { count_call("nvmlDeviceGetCount"); return get_count(n); }
#endif

/* A handle is the device index plus one, with the MIG instance plus one in
 * the second byte, as a pointer. */
static int get_handle(unsigned idx, void **h)
{
    if (st.fail_handle)
        return st.fail_handle;
    if ((int)idx >= st.ndev)
        return 2;
    *h = (void *)(unsigned long)(idx + 1);
    return 0;
}
EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned idx, void **h) { return get_handle(idx, h); }
EXPORT int nvmlDeviceGetHandleByIndex(unsigned idx, void **h) { return get_handle(idx, h); }

/* By PCI bus id, as the CUDA stub numbers its devices: "0000:0N:00.0". */
EXPORT int nvmlDeviceGetHandleByPciBusId_v2(const char *bus, void **h)
{
    count_call("nvmlDeviceGetHandleByPciBusId_v2");
    if (!bus || strlen(bus) < 10 || bus[9] < '0' || bus[9] > '9')
        return 2;
    return get_handle((unsigned)(bus[9] - '0'), h);
}

static int dev_of(void *h)
{
    long d = (long)((unsigned long)h & 0xff) - 1;
    return d >= 0 && d < st.ndev ? (int)d : -1;
}

/* The MIG instance a handle names, or -1 for a whole GPU. */
static int mig_of(void *h)
{
    return (int)(((unsigned long)h >> 8) & 0xff) - 1;
}

/* What a query on handle h answers before looking at it: 0 to go on. */
static int refuse(void *h)
{
    int d = dev_of(h);
    if (d < 0)
        return 2;
    if (st.lost == d + 1)
        return 15;
    if (st.mig_on[d] && mig_of(h) < 0 && st.mig_noperm)
        return 4;
    return 0;
}

EXPORT int nvmlDeviceGetMigMode(void *h, unsigned *cur, unsigned *pend)
{
    count_call("nvmlDeviceGetMigMode");
    int d = dev_of(h);
    if (d < 0 || mig_of(h) >= 0)
        return 2;
    *cur = *pend = st.mig_on[d] ? 1 : 0;
    return 0;
}

EXPORT int nvmlDeviceGetMaxMigDeviceCount(void *h, unsigned *count)
{
    int d = dev_of(h);
    if (d < 0)
        return 2;
    *count = st.mig_on[d] ? MAX_MIG : 0;
    return 0;
}

/* Instances fill the indices from 0; the rest answer NOT_FOUND. */
EXPORT int nvmlDeviceGetMigDeviceHandleByIndex(void *h, unsigned idx, void **out)
{
    int d = dev_of(h);
    if (d < 0 || mig_of(h) >= 0 || !st.mig_on[d])
        return 2;
    if ((int)idx >= st.nmig[d])
        return 6;
    *out = (void *)(unsigned long)((unsigned long)(d + 1) | ((idx + 1ul) << 8));
    return 0;
}

EXPORT int nvmlDeviceGetName(void *h, char *buf, unsigned len)
{
    int d = dev_of(h);
    if (d < 0)
        return 2;
    if (mig_of(h) >= 0)
        snprintf(buf, len, "%s MIG %d", st.name[d], mig_of(h));
    else
        snprintf(buf, len, "%s", st.name[d]);
    return 0;
}

EXPORT int nvmlDeviceGetMinorNumber(void *h, unsigned *minor)
{
    count_call("nvmlDeviceGetMinorNumber");
    int d = dev_of(h);
    if (d < 0 || !minor)
        return 2;
    if (mig_of(h) >= 0)
        return 3;                   /* NOT_SUPPORTED on a MIG device, as the driver */
    *minor = st.minor[d] ? (unsigned)(st.minor[d] - 1) : (unsigned)d;
    return 0;
}

EXPORT int nvmlDeviceGetUUID(void *h, char *buf, unsigned len)
{
    int d = dev_of(h);
    if (d < 0)
        return 2;
    if (mig_of(h) >= 0)
        snprintf(buf, len, "MIG-stub-%04d-%d", d, mig_of(h));
    else
        snprintf(buf, len, "GPU-stub-%04d", d);
    return 0;
}

/* Memory of a handle: the instance's for a MIG handle, else the card's. */
static void memory_of(void *h, unsigned long long *t, unsigned long long *u,
                      unsigned long long *r)
{
    int d = dev_of(h), m = mig_of(h);
    if (m >= 0) {
        *t = st.mig_total[d][m];
        *u = st.mig_used[d][m];
        *r = st.mig_reserved[d][m];
    } else {
        if (st.used_step && st.used[d] + st.reserved[d] + st.used_step <= st.total[d])
            st.used[d] += st.used_step;
        *t = st.total[d];
        *u = st.used[d];
        *r = st.reserved[d];
    }
}

#ifndef STUB_OLD_DRIVER
EXPORT int nvmlDeviceGetMemoryInfo_v2(void *h, mem_v2 *m)
{
    count_call("nvmlDeviceGetMemoryInfo_v2");
    int why = refuse(h);
    if (why)
        return why;
    if (st.fail_memory)
        return st.fail_memory;
    if (st.v2_refuse)
        return 3;
    if (m->version != MEM_V2_VERSION)
        return 25;
    memory_of(h, &m->total, &m->used, &m->reserved);
    m->free = m->total - m->used - m->reserved;
    return 0;
}
#endif

/* Sensors of a whole card (a MIG instance has none, as on real drivers). */
static int sensors_of(void *h)
{
    int why = refuse(h);
    if (why)
        return -why;
    int d = dev_of(h);
    return st.sensors[d] && mig_of(h) < 0 ? d : -3;
}

typedef struct { unsigned int gpu, memory; } util_t;

EXPORT int nvmlDeviceGetUtilizationRates(void *h, util_t *u)
{
    count_call("nvmlDeviceGetUtilizationRates");
    int d = sensors_of(h);
    if (d < 0)
        return -d;
    u->gpu = st.util[d];
    u->memory = st.util[d] / 2;
    return 0;
}

EXPORT int nvmlDeviceGetTemperature(void *h, int sensor, unsigned *c)
{
    int d = sensors_of(h);
    if (d < 0)
        return -d;
    if (sensor != 0)
        return 2;
    *c = st.temp[d];
    return 0;
}

EXPORT int nvmlDeviceGetPowerUsage(void *h, unsigned *mw)
{
    int d = sensors_of(h);
    if (d < 0)
        return -d;
    *mw = st.power_mw[d];
    return 0;
}

EXPORT int nvmlDeviceGetEnforcedPowerLimit(void *h, unsigned *mw)
{
    int d = sensors_of(h);
    if (d < 0 || !st.limit_mw[d])
        return d < 0 ? -d : 3;
    *mw = st.limit_mw[d];
    return 0;
}

EXPORT int nvmlDeviceGetMemoryInfo(void *h, mem_v1 *m)
{
    count_call("nvmlDeviceGetMemoryInfo");
    int why = refuse(h);
    if (why)
        return why;
    if (st.fail_memory)
        return st.fail_memory;
    unsigned long long r;
    memory_of(h, &m->total, &m->used, &r);
    m->used += r;                   /* v1 counts reserved as used */
    m->free = m->total - m->used;
    return 0;
}

/* The process-list protocol: *count in is the capacity; when too small the
 * call sets *count to what is needed and answers INSUFFICIENT_SIZE (7). */
static int list(void *h, unsigned *count, void *out, int v2)
{
    int why = refuse(h);
    if (why)
        return why;
    int d = dev_of(h);
    if (st.fail_procs)
        return st.fail_procs;
    if (mig_of(h) >= 0) {           /* the stub's processes are on whole cards */
        *count = 0;
        return 0;
    }
    unsigned need = (unsigned)st.nproc[d];
    if (*count < need) {
        *count = need;
        if (st.grow && !st.grown) {  /* more processes arrive before the next call */
            st.grown = 1;
            for (int i = 0; i < st.grow && st.nproc[d] < MAX_PROC; i++) {
                int n = st.nproc[d]++;
                st.pid[d][n] = 90000u + (unsigned)i;
                st.pmem[d][n] = 64 * MIB;
            }
        }
        return 7;
    }
    for (unsigned i = 0; i < need; i++) {
        if (v2) {
            proc_v2 *p = (proc_v2 *)out + i;
            p->pid = st.pid[d][i];
            p->used = st.pmem[d][i];
            p->gi = p->ci = 0xFFFFFFFFu;
        } else {
            proc_v1 *p = (proc_v1 *)out + i;
            p->pid = st.pid[d][i];
            p->used = st.pmem[d][i];
        }
    }
    *count = need;
    return 0;
}

#ifndef STUB_OLD_DRIVER
EXPORT int nvmlDeviceGetComputeRunningProcesses_v3(void *h, unsigned *c, proc_v2 *o)
{
    count_call("nvmlDeviceGetComputeRunningProcesses_v3");
    return list(h, c, o, 1);
}
EXPORT int nvmlDeviceGetComputeRunningProcesses_v2(void *h, unsigned *c, proc_v2 *o)
{
    count_call("nvmlDeviceGetComputeRunningProcesses_v2");
    return list(h, c, o, 1);
}
EXPORT int nvmlDeviceGetMPSComputeRunningProcesses_v3(void *h, unsigned *c, proc_v2 *o)
{
    count_call("nvmlDeviceGetMPSComputeRunningProcesses_v3");
    int why = refuse(h);
    if (why)
        return why;
    int d = dev_of(h);
    unsigned need = mig_of(h) >= 0 ? 0 : (unsigned)st.nmps[d];
    if (*c < need) {
        *c = need;
        return 7;
    }
    for (unsigned i = 0; i < need; i++) {
        o[i].pid = st.mps_pid[d][i];
        o[i].used = st.mps_mem[d][i];
        o[i].gi = o[i].ci = 0xFFFFFFFFu;
    }
    *c = need;
    return 0;
}
EXPORT int nvmlDeviceGetGraphicsRunningProcesses_v3(void *h, unsigned *c, proc_v2 *o)
{
    unsigned zero = *c;
    (void)h;
    (void)o;
    (void)zero;
    *c = 0;                         /* no graphics work in the stub */
    return 0;
}
#endif
EXPORT int nvmlDeviceGetComputeRunningProcesses(void *h, unsigned *c, proc_v1 *o)
{
    count_call("nvmlDeviceGetComputeRunningProcesses");
    return list(h, c, o, 0);
}
