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
    case 15: return "GPU is lost";
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

/* A handle is the device index plus one, as a pointer. */
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

static int dev_of(void *h)
{
    long d = (long)(unsigned long)h - 1;
    return d >= 0 && d < st.ndev ? (int)d : -1;
}

EXPORT int nvmlDeviceGetName(void *h, char *buf, unsigned len)
{
    int d = dev_of(h);
    if (d < 0)
        return 2;
    snprintf(buf, len, "%s", st.name[d]);
    return 0;
}

EXPORT int nvmlDeviceGetUUID(void *h, char *buf, unsigned len)
{
    int d = dev_of(h);
    if (d < 0)
        return 2;
    snprintf(buf, len, "GPU-stub-%04d", d);
    return 0;
}

#ifndef STUB_OLD_DRIVER
EXPORT int nvmlDeviceGetMemoryInfo_v2(void *h, mem_v2 *m)
{
    count_call("nvmlDeviceGetMemoryInfo_v2");
    int d = dev_of(h);
    if (d < 0)
        return 2;
    if (st.fail_memory)
        return st.fail_memory;
    if (st.v2_refuse)
        return 3;
    if (m->version != MEM_V2_VERSION)
        return 25;
    m->total = st.total[d];
    m->reserved = st.reserved[d];
    m->used = st.used[d];
    m->free = st.total[d] - st.used[d] - st.reserved[d];
    return 0;
}
#endif

EXPORT int nvmlDeviceGetMemoryInfo(void *h, mem_v1 *m)
{
    count_call("nvmlDeviceGetMemoryInfo");
    int d = dev_of(h);
    if (d < 0)
        return 2;
    if (st.fail_memory)
        return st.fail_memory;
    m->total = st.total[d];
    m->used = st.used[d] + st.reserved[d];     /* v1 counts reserved as used */
    m->free = st.total[d] - m->used;
    return 0;
}

/* The process-list protocol: *count in is the capacity; when too small the
 * call sets *count to what is needed and answers INSUFFICIENT_SIZE (7). */
static int list(void *h, unsigned *count, void *out, int v2)
{
    int d = dev_of(h);
    if (d < 0)
        return 2;
    if (st.fail_procs)
        return st.fail_procs;
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
