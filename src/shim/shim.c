/* SPDX-License-Identifier: MIT */
/*
 * shim/shim.c - the LD_PRELOAD library that holds a job to its memory
 * budget: it interposes the CUDA driver's allocation, context and memory
 * query calls (and NVML's memory query), counts the job's live device bytes
 * in the region its runner shares with it, refuses an allocation past the
 * budget with CUDA_ERROR_OUT_OF_MEMORY, and shows the budget as the card.
 *
 * Owns the process's interposition state (one struct, S) and nothing else:
 * the region's layout is shim/region.h, the allocation table shim/ptrmap.h,
 * the list of entry points shim/hooks.h.  Rules it keeps: it never exits,
 * aborts or blocks the process; the allocation hooks neither log nor take a
 * lock (atomics on the device's own cache line); when it cannot work it
 * passes calls through and says so once on stderr, and a program that never
 * reaches CUDA hears nothing from it.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/cuda_types.h"
#include "shim/hooks.h"
#include "shim/ptrmap.h"
#include "shim/region.h"

#define EXPORT __attribute__((visibility("default")))
#define HIDDEN __attribute__((visibility("hidden")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define PTRMAP_SMALL (1u << 16)        /* 1 MiB: stays in cache */
#define PTRMAP_LARGE (1u << 20)        /* 16 MiB of address space, touched only when needed */
#define ALIGN_BYTES 512ull              /* the driver's smallest allocation step */
#define CTX_MAX_BYTES (4ull << 30)     /* a context measured above this is noise */
#define CHARGE_MAX (1ull << 62)        /* a request this large is refused before it is counted */
#define POOLS 64                        /* memory pools a process's count follows */
#define GRAPHS 256                      /* graphs (and instantiated graphs) with memory nodes */
#define STREAMS 64                      /* streams with plain memory freed on them, pending */
#define LIMITS 3                        /* context limits of memory: CU_LIMIT_STACK_SIZE and the next two */
/* A stream-ordered allocation's table entry carries its pool row (+1) in
 * these bits of its size (sizes stay below 2^48), or POOL_LOST: its pool
 * found no row, so nothing reads what the pool keeps, and its free gives
 * nothing back (the count errs high until the context or the process goes). */
#define POOL_SHIFT 48
#define POOL_LOST 0xffull
#define POOL_SIZE(v) ((v) & ((1ull << POOL_SHIFT) - 1))
#define POOL_ROW(v) ((int)(PTRMAP_SIZE(v) >> POOL_SHIFT) - 1)
#define POOL_IS_LOST(v) ((PTRMAP_SIZE(v) >> POOL_SHIFT) == POOL_LOST)

typedef void *(*dlsym_fn)(void *, const char *);
typedef void *(*dlvsym_fn)(void *, const char *, const char *);

/* Reached from the assembly entry points below, so not static. */
HIDDEN dlsym_fn vram__shim_libc_dlsym;
HIDDEN dlvsym_fn vram__shim_libc_dlvsym;

/* Things the shim says at most once each. */
enum {
    SAY_ATTACH = 1 << 0, SAY_NODRIVER = 1 << 1, SAY_UNKNOWN = 1 << 2, SAY_BIGBUDGET = 1 << 3,
    SAY_SLOTS = 1 << 4,
};

/* ---- the process's state: everything the shim keeps, in one place ---- */

static struct shim {
    /* What the constructor sets comes first, so that a process that never
     * reaches CUDA touches one page of S. */
    vram_shim_region *region;       /* NULL: pass everything through */
    int mode;
    bool uniform;                   /* every device has the same budget */
    _Atomic int slot;               /* this process's slot, -1 for none */
    _Atomic int said;
    ptrmap map;
    uint64_t budget[VRAM_SHIM_DEVICES];         /* per device, from the region */
    char problem[256];              /* why the shim passes through, said at first use */
    _Atomic(void *) real[HOOK_COUNT];
    _Atomic uint64_t devs_seen;     /* devices this process marked in the region */
    _Atomic uint8_t epoch[VRAM_SHIM_DEVICES];   /* bumped when a device's memory all goes */
    _Atomic int ctx_refs[VRAM_SHIM_DEVICES];     /* contexts this process holds per device */
    _Atomic int own_ctx[VRAM_SHIM_DEVICES];      /* of them, made by cuCtxCreate */
    _Atomic uint64_t limit_charge[VRAM_SHIM_DEVICES][LIMITS];   /* charged for raised context limits */
    _Atomic uint64_t ctx_charge[VRAM_SHIM_DEVICES];
    _Atomic uint64_t card_total[VRAM_SHIM_DEVICES];
    _Atomic uint64_t graph_charge[VRAM_SHIM_DEVICES];   /* charged for the graph memory pool */
    _Atomic int graph_seen[VRAM_SHIM_DEVICES];
    _Atomic int cur_pool[VRAM_SHIM_DEVICES];     /* the device's current pool: index + 1, 0 unknown */
    _Atomic int npools;             /* pool rows ever used */
    struct shim_pool {
        _Atomic uintptr_t handle;   /* 0: a free row */
        _Atomic int dev;
        _Atomic int64_t live;       /* bytes of its allocations the program holds */
        _Atomic uint64_t kept;      /* charged beyond live: what the pool still keeps */
    } pools[POOLS];
    struct shim_graph {
        _Atomic uintptr_t handle;   /* a CUgraph or a CUgraphExec; 0: free */
        uint64_t bytes[VRAM_SHIM_DEVICES];   /* its memory nodes, per device */
    } graphs[GRAPHS], execs[GRAPHS];
    _Atomic int nexecs;             /* exec rows ever used: 0 keeps launches free */
    struct shim_stream {
        _Atomic uintptr_t key;      /* stream_key(); 0: a free row */
        _Atomic uint64_t owner;     /* the thread, for a per-thread default stream */
        _Atomic uint64_t bytes[VRAM_SHIM_DEVICES];   /* plain memory freed on it, not yet reached */
    } streams[STREAMS];
    _Atomic int nstreams;           /* stream rows ever used */
    _Atomic uint64_t orphan[VRAM_SHIM_DEVICES];      /* of destroyed streams not yet idle */
} S;

/* The names are arrays, not pointers: a table of pointers is relocated, so
 * written, in every process the shim is loaded into. */
#define HOOK_NAME_MAX 40
static const struct hook_info {
    char name[HOOK_NAME_MAX], base[HOOK_NAME_MAX];
    int lib, since, ptds, hooked;
} hook_info[HOOK_COUNT] = {
#define X(lib, sym, base, since, ptds, hooked) { #sym, #base, lib, since, ptds, hooked },
    SHIM_HOOK_LIST(X)
#undef X
};
#define X(lib, sym, base, since, ptds, hooked) \
    _Static_assert(sizeof(#sym) <= HOOK_NAME_MAX && sizeof(#base) <= HOOK_NAME_MAX, #sym ": name too long");
SHIM_HOOK_LIST(X)
#undef X

/* ---- saying things, once ---- */

static void say_once(int what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say_once(int what, const char *fmt, ...)
{
    if (atomic_fetch_or(&S.said, what) & what)
        return;
    char line[512];
    int n = snprintf(line, sizeof(line), "vram shim: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}

/* Called at the first CUDA call that is not an allocation: why the shim is
 * not enforcing, if it is not. */
static void report(void)
{
    if (UNLIKELY(S.problem[0]))
        say_once(SAY_ATTACH, "%s; passing CUDA calls through unchecked", S.problem);
}

/* ---- finding libc's dlsym without calling dlsym (ours is in front) ---- */

/* This runs before anything else can: a sanitizer's runtime asks our
 * dlsym(RTLD_NEXT, ...) for its interceptors while it starts, before its
 * shadow memory exists.  So these functions are not instrumented and call
 * nothing a sanitizer intercepts: the loaded objects come from the dynamic
 * linker's own list (_r_debug), strings are compared by hand. */
#define NO_SAN __attribute__((no_sanitize("address", "thread", "undefined")))

NO_SAN static bool same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* Whether path's file name starts with prefix ("libc.so"). */
NO_SAN static bool named(const char *path, const char *prefix)
{
    const char *base = path;
    for (const char *p = path; *p; p++)
        if (*p == '/')
            base = p + 1;
    while (*prefix && *prefix == *base)
        prefix++, base++;
    return !*prefix;
}

NO_SAN static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

NO_SAN static ElfW(Addr) dyn_ptr(ElfW(Addr) base, ElfW(Addr) p)
{
    return p < base ? p + base : p;    /* glibc relocates most of these in place */
}

/* The address of defined function sym in the object, or NULL. */
NO_SAN static void *elf_lookup(ElfW(Addr) base, const ElfW(Dyn) *dyn, const char *sym)
{
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gnu = NULL, *sysv = NULL;
    for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)dyn_ptr(base, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_STRTAB)
            strtab = (const char *)dyn_ptr(base, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_GNU_HASH)
            gnu = (const uint32_t *)dyn_ptr(base, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_HASH)
            sysv = (const uint32_t *)dyn_ptr(base, dyn->d_un.d_ptr);
    }
    if (!symtab || !strtab)
        return NULL;
    if (gnu) {
        uint32_t nbuckets = gnu[0], symoffset = gnu[1], bloom_size = gnu[2];
        const uint32_t *buckets = gnu + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
        const uint32_t *chain = buckets + nbuckets;
        uint32_t h = gnu_hash(sym);
        if (!nbuckets)
            return NULL;
        for (uint32_t i = buckets[h % nbuckets]; i >= symoffset && i; i++) {
            uint32_t h2 = chain[i - symoffset];
            const ElfW(Sym) *s = &symtab[i];
            if ((h | 1) == (h2 | 1) && s->st_shndx != SHN_UNDEF && s->st_value &&
                ELF64_ST_TYPE(s->st_info) == STT_FUNC && same(strtab + s->st_name, sym))
                return (void *)(base + s->st_value);
            if (h2 & 1)
                break;
        }
        return NULL;
    }
    if (sysv) {
        uint32_t nchain = sysv[1];
        for (uint32_t i = 1; i < nchain; i++) {
            const ElfW(Sym) *s = &symtab[i];
            if (s->st_shndx != SHN_UNDEF && s->st_value && ELF64_ST_TYPE(s->st_info) == STT_FUNC &&
                same(strtab + s->st_name, sym))
                return (void *)(base + s->st_value);
        }
    }
    return NULL;
}

/* Not static: the assembly entry points call it. */
HIDDEN void vram__shim_find_libc_dl(void);

NO_SAN void vram__shim_find_libc_dl(void)
{
    if (vram__shim_libc_dlsym && vram__shim_libc_dlvsym)
        return;
    for (struct link_map *l = _r_debug.r_map; l; l = l->l_next) {
        if (!l->l_name || !named(l->l_name, "libc.so"))
            continue;
        void *s = elf_lookup(l->l_addr, l->l_ld, "dlsym");
        void *v = elf_lookup(l->l_addr, l->l_ld, "dlvsym");
        if (s && v) {
            vram__shim_libc_dlsym = (dlsym_fn)s;
            vram__shim_libc_dlvsym = (dlvsym_fn)v;
            return;
        }
    }
}

#define find_libc_dl vram__shim_find_libc_dl

/* ---- the real entry points ---- */

static bool is_our_hook(const void *p);

static void *library(int lib)
{
    static const char *const names[][2] = {
        [LIB_CUDA] = { "libcuda.so.1", "libcuda.so" },
        [LIB_NVML] = { "libnvidia-ml.so.1", "libnvidia-ml.so" },
    };
    for (int i = 0; i < 2; i++) {
        void *h = dlopen(names[lib][i], RTLD_LAZY | RTLD_NOLOAD);
        if (h) {
            dlclose(h);             /* NOLOAD took a reference; the library stays loaded */
            return h;
        }
    }
    return NULL;
}

/* Fills the missing real pointers of lib's rows from the loaded library. */
static void resolve(int lib)
{
    find_libc_dl();
    void *h = library(lib);
    if (!h || !vram__shim_libc_dlsym)
        return;
    for (int i = 0; i < HOOK_COUNT; i++) {
        if (hook_info[i].lib != lib || atomic_load_explicit(&S.real[i], memory_order_acquire))
            continue;
        void *p = vram__shim_libc_dlsym(h, hook_info[i].name);
        void *none = NULL;
        if (p && !is_our_hook(p))
            atomic_compare_exchange_strong(&S.real[i], &none, p);
    }
}

static void *peek_real(int i)
{
    void *p = atomic_load_explicit(&S.real[i], memory_order_acquire);
    if (LIKELY(p))
        return p;
    resolve(hook_info[i].lib);
    return atomic_load_explicit(&S.real[i], memory_order_acquire);
}

static void *real_fn(int i)
{
    void *p = peek_real(i);
    if (UNLIKELY(!p) && hook_info[i].lib == LIB_CUDA)
        say_once(SAY_NODRIVER, "the driver has no %s; the call fails with CUDA_ERROR_NOT_SUPPORTED",
                 hook_info[i].name);
    return p;
}

/* A call to the real `name`, typed as our hook of the same name is. */
#define REAL(name) ((__typeof__(&name))real_fn(HOOK_##name))
#define CALL_REAL(name, ...)                                                   \
    ({                                                                         \
        __typeof__(&name) f_ = REAL(name);                                     \
        f_ ? f_(__VA_ARGS__) : CUDA_ERROR_NOT_SUPPORTED;                       \
    })

/* ---- attaching to the region ---- */

/* Parses "123", "512M", "8GiB"; 0 when malformed. */
static uint64_t parse_size(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return 0;
    uint64_t mult = 1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1ull << 10; end++; break;
    case 'm': case 'M': mult = 1ull << 20; end++; break;
    case 'g': case 'G': mult = 1ull << 30; end++; break;
    case 't': case 'T': mult = 1ull << 40; end++; break;
    default: return 0;
    }
    if (*end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v > UINT64_MAX / mult)
        return 0;
    return v * mult;
}

/* VRAM_BUDGET_BYTES: one size for every device ("6GiB"), one per device in
 * CUDA's order ("6GiB,8GiB"), or per named device ("0:6GiB,2:8GiB").  A
 * device a list leaves out gets no budget (it is not the job's).  Nonzero
 * when malformed. */
static int parse_budgets(const char *text, uint64_t *budget)
{
    memset(budget, 0, sizeof(uint64_t) * VRAM_SHIM_DEVICES);
    if (!strchr(text, ',') && !strchr(text, ':')) {
        uint64_t b = parse_size(text);
        for (int d = 0; d < VRAM_SHIM_DEVICES; d++)
            budget[d] = b;
        return b ? 0 : -1;
    }
    char item[64];
    int next = 0;
    for (const char *p = text;;) {
        size_t n = strcspn(p, ",");
        if (!n || n >= sizeof(item))
            return -1;
        memcpy(item, p, n);
        item[n] = '\0';
        char *size = item, *colon = strchr(item, ':');
        int dev = next;
        if (colon) {
            char *end;
            *colon = '\0';
            long v = strtol(item, &end, 10);
            if (*end || end == item || v < 0)
                return -1;
            dev = (int)v;
            size = colon + 1;
        }
        uint64_t b = parse_size(size);
        if (!b || dev >= VRAM_SHIM_DEVICES || budget[dev])
            return -1;
        budget[dev] = b;
        next = dev + 1;
        p += n;
        if (!*p)
            return 0;
        p++;
    }
}

/* /proc/PID/stat (pid 0: this process's) in buf, from the ')' that ends
 * its second field on; NULL when it cannot be read. */
static char *proc_stat(int pid, char *buf, size_t cap)
{
    char path[64];
    if (pid)
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(pid ? path : "/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, cap - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return strrchr(buf, ')');
}

/* This process's start time in clock ticks (field 22 of /proc/self/stat),
 * which tells the runner a recycled pid from the one that held a slot. */
static uint64_t start_ticks(void)
{
    char buf[1024];
    char *p = proc_stat(0, buf, sizeof(buf));
    if (!p)
        return 0;
    for (int field = 2; field < 22 && *p; p++)
        if (*p == ' ')
            field++;
    return strtoull(p, NULL, 10);
}

/* S.slot before the process first reaches the driver, and when the region
 * had no slot left.  A slot is taken only by a process that reaches CUDA:
 * a job's shell pipelines may start thousands that never do. */
#define SLOT_UNTRIED (-1)
#define SLOT_NONE (-2)

static int claim_slot(void)
{
    int slot = atomic_load(&S.slot);
    if (slot != SLOT_UNTRIED || !S.region)
        return slot;
    int mine = vram_shim_slot_claim(S.region, (int32_t)getpid(), start_ticks());
    int want = mine >= 0 ? mine : SLOT_NONE;
    if (!atomic_compare_exchange_strong(&S.slot, &slot, want)) {
        if (mine >= 0)              /* another thread of ours was first */
            atomic_store(&S.region->slot[mine].pid, 0);
        return slot;
    }
    return want;
}

/* What of S a forked child starts without (besides the table). */
#define CHILD_CLEARS(X)                                                                              \
    X(ctx_refs) X(own_ctx) X(ctx_charge) X(limit_charge) X(graph_charge) X(graph_seen) X(cur_pool) \
    X(npools) X(pools) X(graphs) X(execs) X(nexecs) X(streams) X(nstreams) X(orphan)

/* A forked child is a process of its own: it takes a slot of its own when
 * it reaches the driver, and it holds none of its parent's device memory
 * (a context does not cross a fork).  So its table and its counts of
 * contexts, pools, graphs and streams start empty: a free in the child of
 * a pointer its parent holds gives nothing back from the job's count. */
static void after_fork_child(void)
{
    atomic_store(&S.slot, SLOT_UNTRIED);
    /* The table is private and anonymous: MADV_DONTNEED zeroes it. */
    for (int t = 0; t < 2; t++) {
        size_t bytes = (S.map.t[t].mask + 1) * sizeof(ptrmap_entry);
        if (S.map.t[t].e && madvise(S.map.t[t].e, bytes, MADV_DONTNEED))
            memset(S.map.t[t].e, 0, bytes);
    }
#define X(field) memset((void *)&S.field, 0, sizeof(S.field));
    CHILD_CLEARS(X)
#undef X
}

static int mode_from(const char *s)
{
#define X(id, v, name) if (!strcmp(s, name)) return VRAM_SHIM_##id;
    VRAM_SHIM_MODE_LIST(X)
#undef X
    return -1;
}

/* The region at descriptor fd (named n in VRAM_SHIM_FD), mapped; else
 * MAP_FAILED, and why in S.problem. */
static vram_shim_region *map_region(int fd, long n)
{
    struct stat st;
    vram_shim_region *r = MAP_FAILED;
    errno = 0;
    if (fstat(fd, &st) || (size_t)st.st_size < sizeof(vram_shim_region))
        snprintf(S.problem, sizeof(S.problem), "%s=%ld is not the job's region (%s)",
                 VRAM_SHIM_ENV_FD, n, errno ? strerror(errno) : "too small");
    else if ((r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
        snprintf(S.problem, sizeof(S.problem), "cannot map the job's region: %s", strerror(errno));
    else if (!vram_shim_region_valid(r)) {
        snprintf(S.problem, sizeof(S.problem), "%s=%ld is not a region of this version", VRAM_SHIM_ENV_FD, n);
        munmap(r, sizeof(*r));
        r = MAP_FAILED;
    }
    return r;
}

/* pid's parent; 0 when it cannot be read. */
static int parent_of(int pid)
{
    char buf[1024];
    char *p = proc_stat(pid, buf, sizeof(buf));
    return p && p[1] && p[2] && p[3] ? atoi(p + 4) : 0;    /* ") S PPID" */
}

/* A process that lost the region's descriptor on its way from the runner
 * (a subprocess that closed its descriptors, as Python's does by default;
 * a shell that put another file at that number) finds it again where an
 * ancestor still has it, /proc/PID/fd/N (the runner itself, at the top,
 * keeps it to the end).  Else it would pass its calls through unchecked.
 * MAP_FAILED when no ancestor of its own user has it. */
static vram_shim_region *region_from_ancestors(long n)
{
    char path[64], why[sizeof(S.problem)];
    memcpy(why, S.problem, sizeof(why));    /* the first try's reason, kept if this fails too */
    for (int pid = getppid(), depth = 0; pid > 1 && depth < 64; pid = parent_of(pid), depth++) {
        snprintf(path, sizeof(path), "/proc/%d/fd/%ld", pid, n);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        vram_shim_region *r = map_region(fd, n);
        close(fd);                  /* the mapping stays */
        if (r != MAP_FAILED) {
            S.problem[0] = '\0';
            return r;
        }
    }
    memcpy(S.problem, why, sizeof(why));
    return MAP_FAILED;
}

/* The region the runner handed down, or one of our own from the budget in
 * the environment.  Sets S.problem rather than saying anything: the
 * program may never reach CUDA. */
static void attach(void)
{
    const char *fd_text = getenv(VRAM_SHIM_ENV_FD);
    vram_shim_region *r = MAP_FAILED;
    if (fd_text && *fd_text) {
        char *end;
        long fd = strtol(fd_text, &end, 10);
        if (*end || fd < 0 || fd > 1 << 20)
            snprintf(S.problem, sizeof(S.problem), "%s='%.40s' is not a descriptor number",
                     VRAM_SHIM_ENV_FD, fd_text);
        else if ((r = map_region((int)fd, fd)) == MAP_FAILED)
            r = region_from_ancestors(fd);
    } else {
        const char *b = getenv(VRAM_SHIM_ENV_BUDGET), *m = getenv(VRAM_SHIM_ENV_MODE);
        uint64_t budget[VRAM_SHIM_DEVICES];
        int mode = m && *m ? mode_from(m) : VRAM_SHIM_HARD;
        if (!b)
            snprintf(S.problem, sizeof(S.problem), "no budget (neither %s nor %s is set)",
                     VRAM_SHIM_ENV_FD, VRAM_SHIM_ENV_BUDGET);
        else if (parse_budgets(b, budget))
            snprintf(S.problem, sizeof(S.problem), "%s='%.60s' is not a size above zero (e.g. 6GiB), nor a "
                     "list of them per device (6GiB,8GiB or 0:6GiB,2:8GiB; devices 0-%d)",
                     VRAM_SHIM_ENV_BUDGET, b, VRAM_SHIM_DEVICES - 1);
        else if (mode < 0)
            snprintf(S.problem, sizeof(S.problem), "%s='%.20s' is not hard, soft or off",
                     VRAM_SHIM_ENV_MODE, m);
        else if ((r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                           -1, 0)) == MAP_FAILED)
            snprintf(S.problem, sizeof(S.problem), "cannot map a region: %s", strerror(errno));
        else {
            vram_shim_region_init(r, (uint32_t)mode, 0);
            for (int d = 0; d < VRAM_SHIM_DEVICES; d++)
                r->dev[d].budget = budget[d];
        }
    }
    if (r == MAP_FAILED)
        return;
    size_t bytes = (PTRMAP_SMALL + PTRMAP_LARGE) * sizeof(ptrmap_entry);
    ptrmap_entry *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                           -1, 0);
    if (m == MAP_FAILED) {
        snprintf(S.problem, sizeof(S.problem), "cannot map its allocation table: %s", strerror(errno));
        munmap(r, sizeof(*r));
        return;
    }
    S.map.t[0] = (ptrmap_table){ m, PTRMAP_SMALL - 1 };
    S.map.t[1] = (ptrmap_table){ m + PTRMAP_SMALL, PTRMAP_LARGE - 1 };
    S.mode = (int)r->mode;
    S.uniform = true;
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++) {
        S.budget[d] = r->dev[d].budget;
        S.uniform = S.uniform && S.budget[d] == S.budget[0];
    }
    S.region = r;
    atomic_fetch_add(&r->attached, 1);
    pthread_atfork(NULL, NULL, after_fork_child);
}

__attribute__((constructor)) static void shim_init(void)
{
    atomic_store(&S.slot, SLOT_UNTRIED);
    find_libc_dl();
    attach();
}

/* ---- counting ---- */

static bool settle_dev(int dev);
static void settle_all(void);
static bool settle_streams(int dev);

static int current_device(void)
{
    CUdevice d = 0;
    __typeof__(&cuCtxGetDevice) f = REAL(cuCtxGetDevice);
    if (!f || f(&d) != CUDA_SUCCESS)
        return 0;
    return d;
}

/* Sizes a job asks for are the job's to choose, 2^64 - 1 included: they
 * saturate, never wrap to a small count. */
static uint64_t rounded(uint64_t bytes)
{
    return bytes > UINT64_MAX - (ALIGN_BYTES - 1) ? UINT64_MAX : (bytes + ALIGN_BYTES - 1) & ~(ALIGN_BYTES - 1);
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Which of the slot's counters this thread uses: its stack's 2 MiB
 * neighbourhood, so threads spread without a thread-local variable (a
 * thread that lands on another's counter only shares its line). */
static inline int sub_index(void)
{
    char here;
    uintptr_t x = (uintptr_t)&here >> 21;
    return (int)((x ^ x >> 2 ^ x >> 5) % VRAM_SHIM_SUBS);
}

/* Takes bytes on dev for an allocation about to be made.  In hard mode,
 * CUDA_ERROR_OUT_OF_MEMORY when the job would pass its budget; *over is
 * what it would pass it by (soft mode lets that through). */
static CUresult charge(int dev, uint64_t bytes, bool force, uint64_t *over)
{
    *over = 0;
    vram_shim_region *r = S.region;
    if (!r)
        return CUDA_SUCCESS;
    if ((unsigned)dev >= VRAM_SHIM_DEVICES)     /* no budget there, as a device a list leaves out */
        return S.mode == VRAM_SHIM_HARD && !force ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    vram_shim_dev *d = &r->dev[dev];
    /* No card holds this much, and added to the count it could wrap it
     * below the budget (for other threads too, while the driver says no):
     * refused in every mode before it is counted. */
    if (UNLIKELY(bytes >= CHARGE_MAX)) {
        atomic_fetch_add_explicit(&d->refused, 1, memory_order_relaxed);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    bool settled = false;
again:;
    uint64_t now = atomic_fetch_add_explicit(&d->used, bytes, memory_order_relaxed) + bytes;
    if (UNLIKELY(now > S.budget[dev])) {
        if (S.mode == VRAM_SHIM_HARD && !force) {
            atomic_fetch_sub_explicit(&d->used, bytes, memory_order_relaxed);
            /* What pools and the graph pool let go since the last look may
             * make room: look once before refusing. */
            if (!settled && settle_dev(dev)) {
                settled = true;
                goto again;
            }
            atomic_fetch_add_explicit(&d->refused, 1, memory_order_relaxed);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        *over = now - S.budget[dev];
    }
    int slot = atomic_load_explicit(&S.slot, memory_order_relaxed);
    if (UNLIKELY(slot == SLOT_UNTRIED))
        slot = claim_slot();
    if (slot >= 0)
        atomic_fetch_add_explicit(&r->slot[slot].sub[sub_index()].bytes[dev], bytes, memory_order_relaxed);
    if (LIKELY(bytes))
        vram_shim_note_peak(r, &S.devs_seen, dev, now);
    return CUDA_SUCCESS;
}

static void uncharge(int dev, uint64_t bytes)
{
    vram_shim_region *r = S.region;
    if (!r || (unsigned)dev >= VRAM_SHIM_DEVICES || !bytes)
        return;
    int slot = atomic_load_explicit(&S.slot, memory_order_relaxed);
    if (slot >= 0)
        atomic_fetch_sub_explicit(&r->slot[slot].sub[sub_index()].bytes[dev], bytes, memory_order_relaxed);
    uint64_t now = atomic_fetch_sub_explicit(&r->dev[dev].used, bytes, memory_order_relaxed) - bytes;
    vram_shim_note_down(r, dev, now);
}

/* After the driver said yes: remember the allocation, and note by how much
 * it went past the budget (soft mode). */
static void remember(int kind, uint64_t key, int dev, uint64_t bytes, uint64_t over)
{
    if (!S.region || (unsigned)dev >= VRAM_SHIM_DEVICES)
        return;
    uint64_t epoch = atomic_load_explicit(&S.epoch[dev], memory_order_relaxed);
    ptrmap_put(&S.map, PTRMAP_KEY(kind, key), PTRMAP_VALUE(bytes, (uint64_t)dev << 0 | epoch << 4));
    if (UNLIKELY(over))
        vram_shim_raise(&S.region->dev[dev].over_peak, over);
}

/* Gives back what an allocation of kind/key took.  One the table has no
 * record of (made before the shim could see it, or the table was full)
 * gives nothing back: the runner's count errs high, never low. */
static void forget(int kind, uint64_t key)
{
    if (!S.region)
        return;
    uint64_t v;
    if (ptrmap_take(&S.map, PTRMAP_KEY(kind, key), &v)) {
        int meta = PTRMAP_DEV(v), dev = meta & 15;
        if ((meta >> 4) == (int)atomic_load_explicit(&S.epoch[dev], memory_order_relaxed))
            uncharge(dev, PTRMAP_SIZE(v));
    }
}

/* ---- the budget as the card ---- */

static bool viewing(void)
{
    return S.region && S.mode == VRAM_SHIM_HARD;
}

static uint64_t view_total(int dev, uint64_t real_total)
{
    uint64_t budget = (unsigned)dev < VRAM_SHIM_DEVICES ? S.budget[dev] : 0;
    if (budget > real_total) {
        say_once(SAY_BIGBUDGET, "the budget of device %d (%llu bytes) is more than the card's %llu; the card "
                 "is the limit", dev, (unsigned long long)budget, (unsigned long long)real_total);
        return real_total;
    }
    return budget;
}

static uint64_t view_free(int dev, uint64_t real_free, uint64_t real_total)
{
    uint64_t total = view_total(dev, real_total);
    uint64_t used = (unsigned)dev < VRAM_SHIM_DEVICES
                        ? atomic_load_explicit(&S.region->dev[dev].used, memory_order_relaxed) : 0;
    uint64_t left = used >= total ? 0 : total - used;
    return left < real_free ? left : real_free;
}

EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    report();
    CUresult rc = CALL_REAL(cuMemGetInfo_v2, free_bytes, total_bytes);
    if (rc == CUDA_SUCCESS && viewing() && free_bytes && total_bytes) {
        int dev = current_device();
        settle_all();
        *free_bytes = (size_t)view_free(dev, *free_bytes, *total_bytes);
        *total_bytes = (size_t)view_total(dev, *total_bytes);
    }
    return rc;
}

EXPORT CUresult cuMemGetInfo(unsigned int *free_bytes, unsigned int *total_bytes)
{
    report();
    CUresult rc = CALL_REAL(cuMemGetInfo, free_bytes, total_bytes);
    if (rc == CUDA_SUCCESS && viewing() && free_bytes && total_bytes) {
        int dev = current_device();
        settle_all();
        *free_bytes = (unsigned int)view_free(dev, *free_bytes, *total_bytes);
        *total_bytes = (unsigned int)view_total(dev, *total_bytes);
    }
    return rc;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    report();
    CUresult rc = CALL_REAL(cuDeviceTotalMem_v2, bytes, dev);
    if (rc == CUDA_SUCCESS && viewing() && bytes)
        *bytes = (size_t)view_total(dev, *bytes);
    return rc;
}

EXPORT CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    report();
    CUresult rc = CALL_REAL(cuDeviceTotalMem, bytes, dev);
    if (rc == CUDA_SUCCESS && viewing() && bytes)
        *bytes = (unsigned int)view_total(dev, *bytes);
    return rc;
}

/* NVML counts the whole card for everyone; the job sees its budget there,
 * and its own count as what is used.  Which of the job's devices an NVML
 * handle is: found by PCI bus id where NVML can say, else device 0 (with
 * one budget for every device, the job's whole count against it). */
static int nvml_device(nvmlDevice_t h)
{
    if (S.uniform)
        return -1;
    __typeof__(&nvmlDeviceGetHandleByPciBusId_v2) by_bus = REAL(nvmlDeviceGetHandleByPciBusId_v2);
    int count = 0;
    if (!by_bus || CALL_REAL(cuDeviceGetCount, &count) != CUDA_SUCCESS)
        return 0;
    for (int d = 0; d < count && d < VRAM_SHIM_DEVICES; d++) {
        char bus[32];
        nvmlDevice_t mine;
        if (CALL_REAL(cuDeviceGetPCIBusId, bus, (int)sizeof(bus), d) == CUDA_SUCCESS && !by_bus(bus, &mine) &&
            mine == h)
            return d;
    }
    return 0;
}

static void nvml_view(nvmlDevice_t h, unsigned long long *total, unsigned long long *free_b)
{
    int dev = nvml_device(h);
    uint64_t used = 0;
    if (dev < 0) {
        for (int d = 0; d < VRAM_SHIM_DEVICES; d++)
            used += atomic_load_explicit(&S.region->dev[d].used, memory_order_relaxed);
        dev = 0;
    } else {
        used = atomic_load_explicit(&S.region->dev[dev].used, memory_order_relaxed);
    }
    uint64_t t = view_total(dev, *total);
    uint64_t left = used >= t ? 0 : t - used;
    *free_b = left < *free_b ? left : *free_b;
    *total = t;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    __typeof__(&nvmlDeviceGetMemoryInfo) f = REAL(nvmlDeviceGetMemoryInfo);
    if (!f)
        return 13;                  /* NVML_ERROR_FUNCTION_NOT_FOUND */
    nvmlReturn_t rc = f(device, memory);
    if (rc == NVML_SUCCESS && viewing() && memory) {
        nvml_view(device, &memory->total, &memory->free);
        memory->used = memory->total - memory->free;
    }
    return rc;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    __typeof__(&nvmlDeviceGetMemoryInfo_v2) f = REAL(nvmlDeviceGetMemoryInfo_v2);
    if (!f)
        return 13;
    nvmlReturn_t rc = f(device, memory);
    if (rc == NVML_SUCCESS && viewing() && memory) {
        nvml_view(device, &memory->total, &memory->free);
        uint64_t total = memory->total;
        memory->used = total - memory->free - (memory->reserved < total - memory->free ? memory->reserved : 0);
    }
    return rc;
}

/* ---- allocations ---- */

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    __typeof__(&cuMemAlloc_v2) f = REAL(cuMemAlloc_v2);
    if (UNLIKELY(!f))
        return CUDA_ERROR_NOT_SUPPORTED;
    if (!S.region)
        return f(dptr, bytesize);
    int dev = current_device();
    uint64_t n = rounded(bytesize), over;
    if (charge(dev, n, false, &over))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = f(dptr, bytesize);
    if (rc != CUDA_SUCCESS)
        uncharge(dev, n);
    else
        remember(PTRMAP_DEVPTR, *dptr, dev, n, over);
    return rc;
}

EXPORT CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    __typeof__(&cuMemAlloc) f = REAL(cuMemAlloc);
    if (!f)
        return CUDA_ERROR_NOT_SUPPORTED;
    int dev = current_device();
    uint64_t n = rounded(bytesize), over;
    if (charge(dev, n, false, &over))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = f(dptr, bytesize);
    if (rc != CUDA_SUCCESS)
        uncharge(dev, n);
    else
        remember(PTRMAP_DEVPTR, *dptr, dev, n, over);
    return rc;
}

/* The pitch is the driver's to choose: charge the unpadded size first, then
 * the padding it chose, which the budget holds like any other bytes (a
 * narrow row's padding can be nearly all of the allocation): past it, the
 * allocation is freed again and refused. */
static CUresult pitch_padding(int dev, uint64_t n, uint64_t all, uint64_t *over)
{
    uint64_t over2;
    if (all <= n)
        return CUDA_SUCCESS;
    if (charge(dev, all - n, false, &over2))
        return CUDA_ERROR_OUT_OF_MEMORY;
    *over = over2 > *over ? over2 : *over;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                   unsigned int elem)
{
    int dev = current_device();
    uint64_t n = rounded(mul_sat(width, height)), over;
    if (charge(dev, n, false, &over))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CALL_REAL(cuMemAllocPitch_v2, dptr, pitch, width, height, elem);
    if (rc != CUDA_SUCCESS) {
        uncharge(dev, n);
        return rc;
    }
    uint64_t all = rounded(mul_sat(*pitch, height));
    if (pitch_padding(dev, n, all, &over)) {
        CALL_REAL(cuMemFree_v2, *dptr);
        uncharge(dev, n);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    remember(PTRMAP_DEVPTR, *dptr, dev, all > n ? all : n, over);
    return rc;
}

EXPORT CUresult cuMemAllocPitch(CUdeviceptr_v1 *dptr, unsigned int *pitch, unsigned int width,
                                unsigned int height, unsigned int elem)
{
    int dev = current_device();
    uint64_t n = rounded(mul_sat(width, height)), over;
    if (charge(dev, n, false, &over))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CALL_REAL(cuMemAllocPitch, dptr, pitch, width, height, elem);
    if (rc != CUDA_SUCCESS) {
        uncharge(dev, n);
        return rc;
    }
    uint64_t all = rounded(mul_sat(*pitch, height));
    if (pitch_padding(dev, n, all, &over)) {
        CALL_REAL(cuMemFree, *dptr);
        uncharge(dev, n);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    remember(PTRMAP_DEVPTR, *dptr, dev, all > n ? all : n, over);
    return rc;
}

EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    int dev = current_device();
    uint64_t n = rounded(bytesize), over;
    if (charge(dev, n, false, &over))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CALL_REAL(cuMemAllocManaged, dptr, bytesize, flags);
    if (rc != CUDA_SUCCESS)
        uncharge(dev, n);
    else
        remember(PTRMAP_DEVPTR, *dptr, dev, n, over);
    return rc;
}

/* ---- memory pools: what the driver keeps reserved ----
 *
 * A stream-ordered allocation (cuMemAllocAsync, cuMemAllocFromPoolAsync)
 * comes from a pool, and what a pool takes from the card is what it has
 * reserved, not what is allocated from it: a cuMemFreeAsync gives the bytes
 * back to the pool only when the stream reaches it, and the pool gives them
 * back to the card only at a synchronization, down to its release
 * threshold, or at cuMemPoolTrimTo (cuMemFreeAsync is thus counted per the
 * driver's semantics: used until the stream reaches it, and then until the
 * pool lets go).  So each pool the process uses has a row: `live`, the
 * bytes of its allocations the program holds, and `kept`, bytes charged
 * beyond them.  A free (async or not) moves its bytes from `live` to
 * `kept`: they stay counted.  An allocation is charged in full, unless that
 * would refuse it, when the pool's own figures (reserved less used) say how
 * much of it the pool serves from what it keeps.  At the points where the
 * driver releases (cuStreamSynchronize, cuCtxSynchronize,
 * cuEventSynchronize, a synchronous free, cuMemPoolTrimTo, a new release
 * threshold), at cuMemGetInfo, and before refusing an allocation, the shim
 * reads the pool's CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT and sets `kept` to
 * reserved - live.  Between those points the count can be high by what a
 * pool let go or reused (never low by what it holds); at them it is the
 * driver's own figure. */

/* The row of pool h (on dev), made at first sight; -1 when all are taken
 * (its allocations then count as plain ones). */
static int pool_row(CUmemoryPool h, int dev)
{
    if (!h)
        return -1;
    int n = atomic_load_explicit(&S.npools, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (atomic_load_explicit(&S.pools[i].handle, memory_order_acquire) == (uintptr_t)h)
            return i;
    for (int i = 0; i < POOLS; i++) {
        uintptr_t zero = 0;
        struct shim_pool *p = &S.pools[i];
        if (atomic_load(&p->handle) || !atomic_compare_exchange_strong(&p->handle, &zero, (uintptr_t)h))
            continue;
        atomic_store(&p->dev, dev);
        atomic_store(&p->live, 0);
        atomic_store(&p->kept, 0);
        int cur = atomic_load(&S.npools);
        while (cur < i + 1 && !atomic_compare_exchange_weak(&S.npools, &cur, i + 1))
            ;
        /* Two threads may meet the same new pool at once: the lower row wins. */
        for (int j = 0; j < i; j++)
            if (atomic_load(&S.pools[j].handle) == (uintptr_t)h) {
                atomic_store(&p->handle, 0);
                return j;
            }
        return i;
    }
    return -1;
}

/* The row of dev's current pool, which cuMemAllocAsync takes from. */
static int default_pool(int dev)
{
    int r = atomic_load_explicit(&S.cur_pool[dev], memory_order_relaxed);
    if (LIKELY(r))
        return r - 1;
    CUmemoryPool h = NULL;
    if (CALL_REAL(cuDeviceGetMemPool, &h, dev) != CUDA_SUCCESS)
        return -1;
    int i = pool_row(h, dev);
    if (i >= 0)
        atomic_store(&S.cur_pool[dev], i + 1);
    return i;
}

/* Sets what pool row i keeps to the driver's figure; true when that gave
 * bytes back.  Any thread may settle at any time, with no flag to wait on
 * (a settler preempted mid-way must not stop the others: their frees would
 * pile up in `kept` until the budget refused everything): the new figure
 * replaces the one read before the driver was asked, or, when a free or an
 * allocation moved it meanwhile, the row is read again (a few times, then
 * left to the next settle). */
static bool settle_pool(int i)
{
    struct shim_pool *p = &S.pools[i];
    uintptr_t h = atomic_load(&p->handle);
    if (!h)
        return false;
    for (int tries = 0; tries < 4; tries++) {
        uint64_t k = atomic_load(&p->kept);
        int64_t live = atomic_load(&p->live);
        cuuint64_t reserved = 0;
        if (CALL_REAL(cuMemPoolGetAttribute, (CUmemoryPool)h, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) !=
            CUDA_SUCCESS)
            return false;
        uint64_t target = live <= 0 ? reserved : reserved > (uint64_t)live ? reserved - (uint64_t)live : 0, over;
        if (!atomic_compare_exchange_strong(&p->kept, &k, target))
            continue;
        int dev = atomic_load(&p->dev);
        if (target > k)
            charge(dev, target - k, true, &over);   /* the driver holds it already */
        else if (k > target)
            uncharge(dev, k - target);
        return k > target;
    }
    return false;
}

/* An allocation of n from pool row i, charged in full (*charged): the pool
 * may serve it from what it keeps, but only the driver knows whether it can
 * (bytes freed on another stream are not reusable until it gets there).
 * Past the budget, once the pools are settled, it is the driver's word: the
 * pool's reserved bytes less its used ones are free in it, and that much of
 * what the row keeps serves the allocation without a charge. */
static CUresult pool_take(int i, int dev, uint64_t n, uint64_t *charged, uint64_t *over)
{
    struct shim_pool *p = &S.pools[i];
    *charged = n;
    if (LIKELY(charge(dev, n, false, over) == CUDA_SUCCESS)) {
        atomic_fetch_add_explicit(&p->live, (int64_t)n, memory_order_relaxed);
        return CUDA_SUCCESS;
    }
    cuuint64_t reserved = 0, used = 0;
    CUmemoryPool h = (CUmemoryPool)atomic_load(&p->handle);
    if (CALL_REAL(cuMemPoolGetAttribute, h, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) != CUDA_SUCCESS ||
        CALL_REAL(cuMemPoolGetAttribute, h, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used) != CUDA_SUCCESS)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t spare = reserved > used ? reserved - used : 0;
    uint64_t k = atomic_load(&p->kept), t;
    do {
        t = k < n ? k : n;
        t = t < spare ? t : spare;
    } while (t && !atomic_compare_exchange_weak(&p->kept, &k, k - t));
    if (!t)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (n > t && charge(dev, n - t, false, over)) {
        atomic_fetch_add(&p->kept, t);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    atomic_fetch_sub(&S.region->dev[dev].refused, 1);      /* the first try's refusal was not one */
    *charged = n - t;
    atomic_fetch_add_explicit(&p->live, (int64_t)n, memory_order_relaxed);
    return CUDA_SUCCESS;
}

/* The driver refused what pool_take counted. */
static void pool_untake(int i, int dev, uint64_t n, uint64_t charged)
{
    struct shim_pool *p = &S.pools[i];
    atomic_fetch_sub(&p->live, (int64_t)n);
    atomic_fetch_add(&p->kept, n - charged);
    uncharge(dev, charged);
}

/* An allocation of n from pool row i was freed: the pool keeps its bytes
 * until the driver says otherwise (at once, for a synchronous free). */
static void pool_freed(int i, uint64_t n, bool sync)
{
    struct shim_pool *p = &S.pools[i];
    atomic_fetch_sub_explicit(&p->live, (int64_t)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->kept, n, memory_order_relaxed);
    if (sync)
        settle_pool(i);
}

/* ---- graph memory: what the device's graph pool keeps reserved ----
 *
 * A graph's memory nodes (cuGraphAddMemAllocNode) take their memory from
 * the device's graph pool when the graph is launched, and the pool keeps it
 * across launches until cuDeviceGraphMemTrim.  The shim notes each graph's
 * node bytes per device; cuGraphInstantiate refuses (out of memory, in hard
 * mode) a graph whose nodes cannot fit in the budget even if they reuse all
 * the graph pool holds; cuGraphLaunch charges what the nodes need beyond
 * what the pool holds unused (refused past the budget), and at the points
 * the pools settle the device's graph charge becomes the driver's
 * CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT. */

static struct shim_graph *graph_find(struct shim_graph *t, uintptr_t h, bool add)
{
    if (!h)
        return NULL;
    int n = t == S.execs ? atomic_load_explicit(&S.nexecs, memory_order_acquire) : GRAPHS;
    for (int i = 0; i < n; i++)
        if (atomic_load_explicit(&t[i].handle, memory_order_acquire) == h)
            return &t[i];
    if (!add)
        return NULL;
    for (int i = 0; i < GRAPHS; i++) {
        uintptr_t zero = 0;
        if (!atomic_load(&t[i].handle) && atomic_compare_exchange_strong(&t[i].handle, &zero, h)) {
            memset(t[i].bytes, 0, sizeof(t[i].bytes));
            if (t == S.execs) {
                int cur = atomic_load(&S.nexecs);
                while (cur < i + 1 && !atomic_compare_exchange_weak(&S.nexecs, &cur, i + 1))
                    ;
            }
            return &t[i];
        }
    }
    return NULL;
}

static void graph_drop(struct shim_graph *t, uintptr_t h)
{
    struct shim_graph *g = graph_find(t, h, false);
    if (g)
        atomic_store(&g->handle, 0);
}

/* Sets dev's graph charge to what the graph pool holds; true when that gave
 * bytes back. */
static bool settle_graph(int dev)
{
    cuuint64_t reserved = 0;
    if (!atomic_load_explicit(&S.graph_seen[dev], memory_order_relaxed) ||
        CALL_REAL(cuDeviceGetGraphMemAttribute, dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved) !=
            CUDA_SUCCESS)
        return false;
    uint64_t g = atomic_exchange(&S.graph_charge[dev], reserved), over;
    if (reserved > g)
        charge(dev, reserved - g, true, &over);
    else if (g > reserved)
        uncharge(dev, g - reserved);
    return g > reserved;
}

static bool settle_dev(int dev)
{
    bool gave = false;
    int n = atomic_load_explicit(&S.npools, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (atomic_load(&S.pools[i].handle) && atomic_load(&S.pools[i].dev) == dev)
            gave |= settle_pool(i);
    gave |= settle_streams(dev);
    return settle_graph(dev) || gave;
}

static void settle_all(void)
{
    if (!S.region)
        return;
    int n = atomic_load_explicit(&S.npools, memory_order_acquire);
    for (int i = 0; i < n; i++)
        settle_pool(i);
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++)
        settle_graph(d);
    settle_streams(-1);
}

/* ---- plain memory freed on a stream ----
 *
 * cuMemFreeAsync of memory that cuMemAlloc (not a pool) made frees it when
 * the stream gets there, and another stream may still be using it until
 * then: its bytes stay counted until the shim knows the stream is past the
 * free: at cuStreamSynchronize of that stream, cuCtxSynchronize (the
 * device's), a cuStreamQuery of it that says done, and at the points where
 * pools settle (cuMemGetInfo, cuEventSynchronize, before refusing an
 * allocation), where the shim asks cuStreamQuery itself.  Per stream, a
 * row of bytes per device.  A per-thread default stream is a different
 * stream on each thread: its row is its thread's, and only that thread's
 * query or synchronization releases it (or cuCtxSynchronize).  A stream
 * destroyed with frees still ahead of it hands them to the device's orphan
 * count, released at cuCtxSynchronize.  With every row taken, a free goes
 * to the orphan count too (given back at the call, it let a job hold on
 * the card what its count no longer had, for as long as it kept a stream
 * from getting there). */

#define STREAM_PER_THREAD ((uintptr_t)0x2)   /* CU_STREAM_PER_THREAD */

/* The row key of stream s as called (plain or _ptsz); *owner the thread
 * whose stream it is, for a per-thread default stream, else 0. */
static uintptr_t stream_key(CUstream s, bool ptsz, uint64_t *owner)
{
    uintptr_t h = (uintptr_t)s;
    bool per_thread = h == STREAM_PER_THREAD || (h == 0 && ptsz);
    *owner = per_thread ? (uint64_t)pthread_self() : 0;
    return per_thread ? STREAM_PER_THREAD << 1 | 1 : h << 1 | 1;
}

static struct shim_stream *stream_row(uintptr_t key, uint64_t owner, bool add)
{
    int n = atomic_load_explicit(&S.nstreams, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (atomic_load_explicit(&S.streams[i].key, memory_order_acquire) == key &&
            atomic_load_explicit(&S.streams[i].owner, memory_order_relaxed) == owner)
            return &S.streams[i];
    if (!add)
        return NULL;
    for (int i = 0; i < STREAMS; i++) {
        uintptr_t zero = 0;
        struct shim_stream *r = &S.streams[i];
        if (atomic_load(&r->key) || !atomic_compare_exchange_strong(&r->key, &zero, UINTPTR_MAX))
            continue;
        atomic_store(&r->owner, owner);
        atomic_store_explicit(&r->key, key, memory_order_release);
        int cur = atomic_load(&S.nstreams);
        while (cur < i + 1 && !atomic_compare_exchange_weak(&S.nstreams, &cur, i + 1))
            ;
        return r;
    }
    return NULL;
}

/* Plain memory of n bytes on dev freed on stream s: counted until the
 * stream gets there, or, with no row left, until the context is
 * synchronized. */
static void stream_pending(CUstream s, bool ptsz, int dev, uint64_t n)
{
    uint64_t owner;
    uintptr_t key = stream_key(s, ptsz, &owner);
    struct shim_stream *r = stream_row(key, owner, true);
    atomic_fetch_add(r ? &r->bytes[dev] : &S.orphan[dev], n);
}

/* The stream of row r got past its frees (on dev, or every device when
 * dev < 0); true when that gave bytes back. */
static bool stream_reached(struct shim_stream *r, int dev)
{
    bool gave = false;
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++) {
        if (dev >= 0 && d != dev)
            continue;
        uint64_t b = atomic_load_explicit(&r->bytes[d], memory_order_relaxed) ? atomic_exchange(&r->bytes[d], 0)
                                                                                : 0;
        if (b) {
            uncharge(d, b);
            gave = true;
        }
    }
    return gave;
}

static bool row_busy(struct shim_stream *r, int dev)
{
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++)
        if ((dev < 0 || d == dev) && atomic_load_explicit(&r->bytes[d], memory_order_relaxed))
            return true;
    return false;
}

/* Asks the driver whether row r's stream is done (only the owner may ask
 * about a per-thread default stream). */
static bool stream_idle(struct shim_stream *r)
{
    uintptr_t key = atomic_load(&r->key);
    uint64_t owner = atomic_load(&r->owner);
    if (!key || key == UINTPTR_MAX || (owner && owner != (uint64_t)pthread_self()))
        return false;
    CUstream s = (CUstream)(key >> 1);
    return (owner ? CALL_REAL(cuStreamQuery_ptsz, s) : CALL_REAL(cuStreamQuery, s)) == CUDA_SUCCESS;
}

/* At a settle point: the streams that are done give their frees back. */
static bool settle_streams(int dev)
{
    bool gave = false;
    int n = atomic_load_explicit(&S.nstreams, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        struct shim_stream *r = &S.streams[i];
        if (row_busy(r, dev) && stream_idle(r))
            gave |= stream_reached(r, dev);
    }
    return gave;
}

/* Stream s (as called) got past everything on it. */
static void stream_synced(CUstream s, bool ptsz)
{
    uint64_t owner;
    uintptr_t key = stream_key(s, ptsz, &owner);
    struct shim_stream *r = S.region ? stream_row(key, owner, false) : NULL;
    if (r)
        stream_reached(r, -1);
}

/* Stream-ordered allocations count from the call, as the budget must hold
 * for what the stream will have taken by then; from their pool's row, on
 * the pool's device (cuMemAllocFromPoolAsync may name a pool of a device
 * that is not the current one). */
/* An allocation that the pool was to serve from what it keeps (past the
 * budget otherwise): the pool's own figure now says whether it did.  Where
 * the driver grew the pool instead and that took the job past its budget
 * (hard mode), the allocation is freed again, on its stream, and refused. */
static CUresult pool_served(int row, int dev, uint64_t n, CUdeviceptr p, CUstream s, bool ptsz)
{
    settle_pool(row);
    if (S.mode != VRAM_SHIM_HARD ||
        atomic_load_explicit(&S.region->dev[dev].used, memory_order_relaxed) <= S.budget[dev])
        return CUDA_SUCCESS;
    if ((ptsz ? CALL_REAL(cuMemFreeAsync_ptsz, p, s) : CALL_REAL(cuMemFreeAsync, p, s)) != CUDA_SUCCESS)
        return CUDA_SUCCESS;        /* it stays, counted */
    pool_freed(row, n, false);
    atomic_fetch_add_explicit(&S.region->dev[dev].refused, 1, memory_order_relaxed);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

#define ASYNC_ALLOC(name, row_expr, stream, ptsz, ...)                         \
    {                                                                          \
        int dev = current_device();                                            \
        uint64_t n = rounded(bytesize), over, charged = n;                     \
        int row = S.region && (unsigned)dev < VRAM_SHIM_DEVICES &&             \
                  n < (1ull << POOL_SHIFT) ? (row_expr) : -2; /* -1: lost */   \
        if (row >= 0)                   /* the pool's device counts it */      \
            dev = atomic_load(&S.pools[row].dev);                              \
        if (row >= 0 ? pool_take(row, dev, n, &charged, &over)                 \
                     : charge(dev, n, false, &over))                           \
            return CUDA_ERROR_OUT_OF_MEMORY;                                   \
        CUresult rc = CALL_REAL(name, __VA_ARGS__);                            \
        if (rc != CUDA_SUCCESS) {                                              \
            if (row >= 0)                                                      \
                pool_untake(row, dev, n, charged);                             \
            else                                                               \
                uncharge(dev, n);                                              \
        } else if (UNLIKELY(row >= 0 && charged < n) &&                        \
                   pool_served(row, dev, n, *dptr, stream, ptsz)) {            \
            rc = CUDA_ERROR_OUT_OF_MEMORY;                                     \
        } else {                                                               \
            remember(PTRMAP_DEVPTR, *dptr, dev,                                \
                     n | (row >= 0 ? (uint64_t)(row + 1) << POOL_SHIFT         \
                          : row == -1 ? POOL_LOST << POOL_SHIFT : 0), over);   \
        }                                                                      \
        return rc;                                                             \
    }

EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream s)
    ASYNC_ALLOC(cuMemAllocAsync, default_pool(dev), s, false, dptr, bytesize, s)
EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream s)
    ASYNC_ALLOC(cuMemAllocAsync_ptsz, default_pool(dev), s, true, dptr, bytesize, s)
EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s)
    ASYNC_ALLOC(cuMemAllocFromPoolAsync, pool_row(pool, dev), s, false, dptr, bytesize, pool, s)
EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                             CUstream s)
    ASYNC_ALLOC(cuMemAllocFromPoolAsync_ptsz, pool_row(pool, dev), s, true, dptr, bytesize, pool, s)

/* A free gives the bytes back once the driver accepted it (a pool's
 * allocation: to its pool's row, see above); the table entry is taken first
 * so that a racing double free cannot give them back twice, and put back if
 * the driver refuses. */
#define FREE_DEVPTR(name, sync, stream, ptsz, p, ...)                          \
    {                                                                          \
        __typeof__(&name) f_ = REAL(name);                                     \
        if (UNLIKELY(!f_))                                                     \
            return CUDA_ERROR_NOT_SUPPORTED;                                   \
        if (!S.region)                                                         \
            return f_(__VA_ARGS__);                                            \
        uint64_t v_ = 0;                                                       \
        bool had_ = ptrmap_take(&S.map, PTRMAP_KEY(PTRMAP_DEVPTR, p), &v_);    \
        CUresult rc_ = f_(__VA_ARGS__);                                        \
        if (had_) {                                                            \
            int meta_ = PTRMAP_DEV(v_), dev_ = meta_ & 15;                     \
            if (rc_ != CUDA_SUCCESS)                                           \
                ptrmap_put(&S.map, PTRMAP_KEY(PTRMAP_DEVPTR, p), v_);          \
            else if ((meta_ >> 4) !=                                           \
                     (int)atomic_load_explicit(&S.epoch[dev_], memory_order_relaxed) || \
                     UNLIKELY(POOL_IS_LOST(v_)))                               \
                ;                                                              \
            else if (UNLIKELY(POOL_ROW(v_) >= 0))                              \
                pool_freed(POOL_ROW(v_), POOL_SIZE(v_), sync);                 \
            else if (sync)                                                     \
                uncharge(dev_, PTRMAP_SIZE(v_));                               \
            else                                                               \
                stream_pending(stream, ptsz, dev_, PTRMAP_SIZE(v_));           \
        }                                                                      \
        return rc_;                                                            \
    }

EXPORT CUresult cuMemFree_v2(CUdeviceptr p) FREE_DEVPTR(cuMemFree_v2, true, NULL, false, p, p)
EXPORT CUresult cuMemFree(CUdeviceptr_v1 p) FREE_DEVPTR(cuMemFree, true, NULL, false, p, p)
EXPORT CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) FREE_DEVPTR(cuMemFreeAsync, false, s, false, p, p, s)
EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s)
    FREE_DEVPTR(cuMemFreeAsync_ptsz, false, s, true, p, p, s)

/* ---- the virtual memory calls ----
 *
 * Physical memory is what cuMemCreate makes, and it lives while anything
 * refers to it: its handle until cuMemRelease (once more for each
 * cuMemRetainAllocationHandle, which answers with the same handle) and each
 * cuMemMap of it until an unmap covers it.  The handle's table entry counts
 * those references above its size, and the bytes go back with the last: a
 * handle released while mapped (the usual idiom) stays counted until its
 * unmap.  A mapping has two entries, keyed by its address: its handle and
 * its size (one cuMemUnmap may cover several).  A mapping with no room in
 * the table, or a count that reaches VMM_REFS_MAX, stays counted (errs
 * high).  A mapping is counted before the driver makes it, so that a
 * release racing it cannot take the last reference first. */
#define VMM_REF_ONE (1ull << 48)
#define VMM_REFS(v) (PTRMAP_SIZE(v) >> 48)
#define VMM_REFS_MAX 0xffull

/* One reference more (+1) or fewer (-1) to the allocation of handle; the
 * last gives its bytes back.  False when the table does not follow it. */
static bool vmm_ref(CUmemGenericAllocationHandle handle, int delta)
{
    _Atomic uint64_t *e = S.region ? ptrmap_find(&S.map, PTRMAP_KEY(PTRMAP_HANDLE, handle)) : NULL;
    if (!e)
        return false;
    uint64_t v = atomic_load(e), refs;
    do {
        refs = VMM_REFS(v);
        if (!refs || refs == VMM_REFS_MAX)
            return refs != 0;       /* going already, or counted for good */
    } while (!atomic_compare_exchange_weak(e, &v, delta > 0 ? v + VMM_REF_ONE : v - VMM_REF_ONE));
    if (delta < 0 && refs == 1)
        forget(PTRMAP_HANDLE, handle);
    return true;
}

EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                            const CUmemAllocationProp *prop, unsigned long long flags)
{
    int dev = prop && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE ? prop->location.id : -1;
    uint64_t over;
    if (dev >= 0 && charge(dev, size, false, &over))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CALL_REAL(cuMemCreate, handle, size, prop, flags);
    if (dev < 0)
        return rc;
    if (rc != CUDA_SUCCESS)
        uncharge(dev, size);
    else if (size < VMM_REF_ONE)    /* one reference: the handle */
        remember(PTRMAP_HANDLE, *handle, dev, size | VMM_REF_ONE, over);
    return rc;
}

EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    CUresult rc = CALL_REAL(cuMemRelease, handle);
    if (rc == CUDA_SUCCESS)
        vmm_ref(handle, -1);
    return rc;
}

EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    CUresult rc = CALL_REAL(cuMemRetainAllocationHandle, handle, addr);
    if (rc == CUDA_SUCCESS && handle)
        vmm_ref(*handle, +1);
    return rc;
}

EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                         unsigned long long flags)
{
    bool followed = vmm_ref(handle, +1);
    CUresult rc = CALL_REAL(cuMemMap, ptr, size, offset, handle, flags);
    if (!followed)
        return rc;
    if (rc != CUDA_SUCCESS)
        vmm_ref(handle, -1);
    else if (ptrmap_put(&S.map, PTRMAP_KEY(PTRMAP_MAPPING, ptr), handle) &&
             !ptrmap_put(&S.map, PTRMAP_KEY(PTRMAP_MAPSIZE, ptr), size)) {
        uint64_t h;
        ptrmap_take(&S.map, PTRMAP_KEY(PTRMAP_MAPPING, ptr), &h);
    }
    return rc;
}

/* Every mapping from ptr on, up to size bytes, went. */
static void vmm_unmapped(CUdeviceptr ptr, uint64_t size)
{
    uint64_t h, n;
    for (uint64_t at = ptr; at - ptr < size; at += n) {
        if (!ptrmap_take(&S.map, PTRMAP_KEY(PTRMAP_MAPPING, at), &h))
            return;                 /* not followed: what it maps stays counted */
        if (!ptrmap_take(&S.map, PTRMAP_KEY(PTRMAP_MAPSIZE, at), &n) || !n)
            n = size;
        vmm_ref(h, -1);
    }
}

EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    CUresult rc = CALL_REAL(cuMemUnmap, ptr, size);
    if (rc == CUDA_SUCCESS && S.region)
        vmm_unmapped(ptr, size);
    return rc;
}

/* ---- arrays ---- */

static uint64_t element_bytes(CUarray_format f, unsigned channels)
{
    unsigned b = 4;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: b = 1; break;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: b = 2; break;
    default: b = 4; break;
    }
    return (uint64_t)b * (channels ? channels : 1);
}

/* An array's bytes before padding: w * h * d elements, saturated. */
static uint64_t array_bytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned channels)
{
    return mul_sat(mul_sat(mul_sat(w ? w : 1, h ? h : 1), d ? d : 1), element_bytes(f, channels));
}

#define ARRAY_CREATE(name, kind, out, bytes, ...)                              \
    {                                                                          \
        int dev = current_device();                                            \
        uint64_t n = rounded(bytes), over;                                     \
        if (charge(dev, n, false, &over))                                      \
            return CUDA_ERROR_OUT_OF_MEMORY;                                   \
        CUresult rc = CALL_REAL(name, __VA_ARGS__);                            \
        if (rc != CUDA_SUCCESS)                                                \
            uncharge(dev, n);                                                  \
        else                                                                   \
            remember(kind, (uint64_t)(uintptr_t)*(out), dev, n, over);         \
        return rc;                                                             \
    }

EXPORT CUresult cuArrayCreate_v2(CUarray *a, const CUDA_ARRAY_DESCRIPTOR *d)
    ARRAY_CREATE(cuArrayCreate_v2, PTRMAP_ARRAY, a,
                 d ? array_bytes(d->Width, d->Height, 1, d->Format, d->NumChannels) : 0, a, d)
EXPORT CUresult cuArrayCreate(CUarray *a, const CUDA_ARRAY_DESCRIPTOR_v1 *d)
    ARRAY_CREATE(cuArrayCreate, PTRMAP_ARRAY, a,
                 d ? array_bytes(d->Width, d->Height, 1, d->Format, d->NumChannels) : 0, a, d)
EXPORT CUresult cuArray3DCreate_v2(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR *d)
    ARRAY_CREATE(cuArray3DCreate_v2, PTRMAP_ARRAY, a,
                 d ? array_bytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels) : 0,
                 a, d)
EXPORT CUresult cuArray3DCreate(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR_v1 *d)
    ARRAY_CREATE(cuArray3DCreate, PTRMAP_ARRAY, a,
                 d ? array_bytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels) : 0,
                 a, d)
/* Every level of a mipmapped array is at most a quarter of the one above
 * (an eighth in 3D), so the whole is at most 4/3 of the first level. */
EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *a, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                       unsigned int levels)
    ARRAY_CREATE(cuMipmappedArrayCreate, PTRMAP_MIPMAP, a,
                 d ? mul_sat(array_bytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels),
                             levels > 1 ? 4 : 3) / 3 : 0,
                 a, d, levels)

EXPORT CUresult cuArrayDestroy(CUarray a)
{
    CUresult rc = CALL_REAL(cuArrayDestroy, a);
    if (rc == CUDA_SUCCESS)
        forget(PTRMAP_ARRAY, (uint64_t)(uintptr_t)a);
    return rc;
}

EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray a)
{
    CUresult rc = CALL_REAL(cuMipmappedArrayDestroy, a);
    if (rc == CUDA_SUCCESS)
        forget(PTRMAP_MIPMAP, (uint64_t)(uintptr_t)a);
    return rc;
}

/* A pool holds no memory until something is allocated from it; its row is
 * made here so that its device is the one it was made for. */
EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    report();
    CUresult rc = CALL_REAL(cuMemPoolCreate, pool, props);
    if (rc == CUDA_SUCCESS && S.region && pool && props && props->location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
        (unsigned)props->location.id < VRAM_SHIM_DEVICES)
        pool_row(*pool, props->location.id);
    return rc;
}

static int pool_known(CUmemoryPool pool)
{
    int n = atomic_load_explicit(&S.npools, memory_order_acquire);
    for (int i = 0; pool && i < n; i++)
        if (atomic_load(&S.pools[i].handle) == (uintptr_t)pool)
            return i;
    return -1;
}

EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    CUresult rc = CALL_REAL(cuMemPoolTrimTo, pool, keep);
    int i = rc == CUDA_SUCCESS ? pool_known(pool) : -1;
    if (i >= 0)
        settle_pool(i);
    return rc;
}

/* A new release threshold may let the pool give bytes back at the next
 * synchronization; the pool is read now and then. */
EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, int attr, void *value)
{
    CUresult rc = CALL_REAL(cuMemPoolSetAttribute, pool, attr, value);
    int i = rc == CUDA_SUCCESS ? pool_known(pool) : -1;
    if (i >= 0)
        settle_pool(i);
    return rc;
}

/* A destroyed pool gives back what it kept; one with allocations still out
 * lives on in the driver until they are freed, and so does its row. */
EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    int i = pool_known(pool);
    if (i >= 0)
        settle_pool(i);
    CUresult rc = CALL_REAL(cuMemPoolDestroy, pool);
    if (rc == CUDA_SUCCESS && i >= 0 && atomic_load(&S.pools[i].live) <= 0) {
        struct shim_pool *p = &S.pools[i];
        uncharge(atomic_load(&p->dev), atomic_exchange(&p->kept, 0));
        for (int d = 0; d < VRAM_SHIM_DEVICES; d++) {
            int want = i + 1;
            atomic_compare_exchange_strong(&S.cur_pool[d], &want, 0);
        }
        atomic_store(&p->handle, 0);
    }
    return rc;
}

EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    CUresult rc = CALL_REAL(cuDeviceSetMemPool, dev, pool);
    if (rc == CUDA_SUCCESS && (unsigned)dev < VRAM_SHIM_DEVICES)
        atomic_store(&S.cur_pool[dev], 0);
    return rc;
}

/* Where the driver gives pools' and the graph pool's bytes back. */
#define SETTLE_AFTER(name, ...)                                                \
    {                                                                          \
        CUresult rc_ = CALL_REAL(name, __VA_ARGS__);                           \
        if (rc_ == CUDA_SUCCESS)                                               \
            settle_all();                                                      \
        return rc_;                                                            \
    }

EXPORT CUresult cuEventSynchronize(CUevent e) SETTLE_AFTER(cuEventSynchronize, e)

#define STREAM_DONE_AFTER(name, ptsz, s)                                       \
    {                                                                          \
        CUresult rc_ = CALL_REAL(name, s);                                     \
        if (rc_ == CUDA_SUCCESS && S.region) {                                 \
            stream_synced(s, ptsz);                                            \
            settle_all();                                                      \
        }                                                                      \
        return rc_;                                                            \
    }

EXPORT CUresult cuStreamSynchronize(CUstream s) STREAM_DONE_AFTER(cuStreamSynchronize, false, s)
EXPORT CUresult cuStreamSynchronize_ptsz(CUstream s) STREAM_DONE_AFTER(cuStreamSynchronize_ptsz, true, s)

/* A query that says done: the stream got past its frees (pools settle at
 * synchronizations only: a polling loop stays cheap). */
#define STREAM_QUERY(name, ptsz, s)                                            \
    {                                                                          \
        CUresult rc_ = CALL_REAL(name, s);                                     \
        if (rc_ == CUDA_SUCCESS && S.region)                                   \
            stream_synced(s, ptsz);                                            \
        return rc_;                                                            \
    }

EXPORT CUresult cuStreamQuery(CUstream s) STREAM_QUERY(cuStreamQuery, false, s)
EXPORT CUresult cuStreamQuery_ptsz(CUstream s) STREAM_QUERY(cuStreamQuery_ptsz, true, s)

/* A stream destroyed before it got past its frees: they still happen, and
 * are the device's until the context is synchronized.  The row is free
 * again (a new stream may get the same handle). */
static void stream_destroying(CUstream s)
{
    uint64_t owner;
    uintptr_t key = stream_key(s, false, &owner);
    struct shim_stream *r = S.region ? stream_row(key, owner, false) : NULL;
    if (!r)
        return;
    if (row_busy(r, -1) && stream_idle(r))
        stream_reached(r, -1);
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++) {
        uint64_t b = atomic_exchange(&r->bytes[d], 0);
        if (b)
            atomic_fetch_add(&S.orphan[d], b);
    }
    atomic_store(&r->key, 0);
}

EXPORT CUresult cuStreamDestroy_v2(CUstream s)
{
    stream_destroying(s);
    return CALL_REAL(cuStreamDestroy_v2, s);
}

EXPORT CUresult cuStreamDestroy(CUstream s)
{
    stream_destroying(s);
    return CALL_REAL(cuStreamDestroy, s);
}

/* Every stream of the current context got past everything. */
EXPORT CUresult cuCtxSynchronize(void)
{
    CUresult rc = CALL_REAL(cuCtxSynchronize);
    if (rc == CUDA_SUCCESS && S.region) {
        int dev = current_device();
        if ((unsigned)dev < VRAM_SHIM_DEVICES) {
            int n = atomic_load_explicit(&S.nstreams, memory_order_acquire);
            for (int i = 0; i < n; i++)
                stream_reached(&S.streams[i], dev);
            uncharge(dev, atomic_exchange(&S.orphan[dev], 0));
        }
        settle_all();
    }
    return rc;
}

/* ---- graphs ---- */

EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph graph, const CUgraphNode *deps, size_t ndeps,
                                       CUDA_MEM_ALLOC_NODE_PARAMS *params)
{
    report();
    CUresult rc = CALL_REAL(cuGraphAddMemAllocNode, node, graph, deps, ndeps, params);
    if (rc == CUDA_SUCCESS && S.region && params &&
        (unsigned)params->poolProps.location.id < VRAM_SHIM_DEVICES) {
        struct shim_graph *g = graph_find(S.graphs, (uintptr_t)graph, true);
        uint64_t *b = g ? &g->bytes[params->poolProps.location.id] : NULL, add = rounded(params->bytesize);
        if (b)
            *b = *b > UINT64_MAX - add ? UINT64_MAX : *b + add;
        atomic_store(&S.graph_seen[params->poolProps.location.id], 1);
    }
    return rc;
}

EXPORT CUresult cuGraphDestroy(CUgraph graph)
{
    CUresult rc = CALL_REAL(cuGraphDestroy, graph);
    if (rc == CUDA_SUCCESS && S.region)
        graph_drop(S.graphs, (uintptr_t)graph);
    return rc;
}

/* Whether graph's memory nodes can fit in the budget, reusing all that the
 * graph pool holds; CUDA_ERROR_OUT_OF_MEMORY in hard mode when not. */
static CUresult graph_fits(CUgraph graph)
{
    struct shim_graph *g = S.region && S.mode == VRAM_SHIM_HARD ? graph_find(S.graphs, (uintptr_t)graph, false)
                                                                : NULL;
    for (int d = 0; g && d < VRAM_SHIM_DEVICES; d++) {
        if (!g->bytes[d])
            continue;
        for (int tries = 0; tries < 2; tries++) {
            uint64_t used = atomic_load(&S.region->dev[d].used), pool = atomic_load(&S.graph_charge[d]);
            uint64_t other = used > pool ? used - pool : 0;
            if (g->bytes[d] <= S.budget[d] && other <= S.budget[d] - g->bytes[d])
                break;
            if (tries || !settle_dev(d)) {
                atomic_fetch_add(&S.region->dev[d].refused, 1);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
        }
    }
    return CUDA_SUCCESS;
}

static void graph_instantiated(CUgraphExec *exec, CUgraph graph)
{
    struct shim_graph *g = graph_find(S.graphs, (uintptr_t)graph, false), *x;
    if (g && exec && (x = graph_find(S.execs, (uintptr_t)*exec, true)))
        memcpy(x->bytes, g->bytes, sizeof(x->bytes));
}

/* A graph made by stream capture has memory nodes the shim never saw added:
 * any instantiation makes the settles read the device's graph pool. */
#define INSTANTIATE(name, exec, graph, ...)                                    \
    {                                                                          \
        report();                                                              \
        int dev_ = S.region ? current_device() : -1;                           \
        if ((unsigned)dev_ < VRAM_SHIM_DEVICES)                                \
            atomic_store(&S.graph_seen[dev_], 1);                              \
        if (graph_fits(graph))                                                 \
            return CUDA_ERROR_OUT_OF_MEMORY;                                   \
        CUresult rc_ = CALL_REAL(name, __VA_ARGS__);                           \
        if (rc_ == CUDA_SUCCESS && S.region)                                   \
            graph_instantiated(exec, graph);                                   \
        return rc_;                                                            \
    }

EXPORT CUresult cuGraphInstantiate(CUgraphExec *exec, CUgraph graph, CUgraphNode *en, char *log, size_t n)
    INSTANTIATE(cuGraphInstantiate, exec, graph, exec, graph, en, log, n)
EXPORT CUresult cuGraphInstantiate_v2(CUgraphExec *exec, CUgraph graph, CUgraphNode *en, char *log, size_t n)
    INSTANTIATE(cuGraphInstantiate_v2, exec, graph, exec, graph, en, log, n)
EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph graph, unsigned long long flags)
    INSTANTIATE(cuGraphInstantiateWithFlags, exec, graph, exec, graph, flags)
EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *exec, CUgraph graph, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
    INSTANTIATE(cuGraphInstantiateWithParams, exec, graph, exec, graph, p)
EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec *exec, CUgraph graph,
                                                  CUDA_GRAPH_INSTANTIATE_PARAMS *p)
    INSTANTIATE(cuGraphInstantiateWithParams_ptsz, exec, graph, exec, graph, p)

EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec)
{
    CUresult rc = CALL_REAL(cuGraphExecDestroy, exec);
    if (rc == CUDA_SUCCESS && S.region && atomic_load_explicit(&S.nexecs, memory_order_relaxed))
        graph_drop(S.execs, (uintptr_t)exec);
    return rc;
}

/* Charges what a launch of exec may take from the card beyond what the
 * graph pool holds unused; charged[] says how much per device. */
static CUresult launch_charge(CUgraphExec exec, uint64_t *charged)
{
    struct shim_graph *x = graph_find(S.execs, (uintptr_t)exec, false);
    for (int d = 0; x && d < VRAM_SHIM_DEVICES; d++) {
        if (!x->bytes[d])
            continue;
        settle_graph(d);
        cuuint64_t reserved = atomic_load(&S.graph_charge[d]), used = 0;
        uint64_t over = 0;
        CALL_REAL(cuDeviceGetGraphMemAttribute, d, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &used);
        uint64_t spare = reserved > used ? reserved - used : 0;
        uint64_t need = x->bytes[d] > spare ? x->bytes[d] - spare : 0;
        if (need && charge(d, need, false, &over)) {
            for (int e = 0; e < d; e++) {
                uncharge(e, charged[e]);
                atomic_fetch_sub(&S.graph_charge[e], charged[e]);
            }
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        if (over)
            vram_shim_raise(&S.region->dev[d].over_peak, over);
        atomic_fetch_add(&S.graph_charge[d], need);
        charged[d] = need;
    }
    return CUDA_SUCCESS;
}

#define LAUNCH(name, exec, s)                                                  \
    {                                                                          \
        if (LIKELY(!atomic_load_explicit(&S.nexecs, memory_order_relaxed)))   \
            return CALL_REAL(name, exec, s);                                   \
        uint64_t charged_[VRAM_SHIM_DEVICES] = { 0 };                          \
        if (launch_charge(exec, charged_))                                     \
            return CUDA_ERROR_OUT_OF_MEMORY;                                   \
        CUresult rc_ = CALL_REAL(name, exec, s);                               \
        if (rc_ != CUDA_SUCCESS)                                               \
            for (int d_ = 0; d_ < VRAM_SHIM_DEVICES; d_++)                     \
                if (charged_[d_]) {                                            \
                    uncharge(d_, charged_[d_]);                                \
                    atomic_fetch_sub(&S.graph_charge[d_], charged_[d_]);       \
                }                                                              \
        return rc_;                                                            \
    }

EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream s) LAUNCH(cuGraphLaunch, exec, s)
EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec exec, CUstream s) LAUNCH(cuGraphLaunch_ptsz, exec, s)

EXPORT CUresult cuDeviceGraphMemTrim(CUdevice dev)
{
    CUresult rc = CALL_REAL(cuDeviceGraphMemTrim, dev);
    if (rc == CUDA_SUCCESS && S.region && (unsigned)dev < VRAM_SHIM_DEVICES)
        settle_graph(dev);
    return rc;
}

/* ---- contexts ---- */

/* The runner trusts the count once the job has reached the driver (before
 * that, a job's memory is not the shim's to know). */
static void seen(void)
{
    if (!S.region)
        return;
    if (!atomic_load_explicit(&S.region->cuda_seen, memory_order_relaxed))
        atomic_store(&S.region->cuda_seen, 1);
    claim_slot();
}

/* What the card has free before a context exists: from NVML when it can
 * be loaded; else from what the runner saw free on the card when it started
 * the job (the region's card_free), less what the job has taken there since
 * (its count on the device); 0 when it cannot be known (the context then
 * counts as nothing).  The context's own size is then this less what
 * cuMemGetInfo says is free once it exists. */
static uint64_t card_free_before(int dev)
{
    char bus[32];
    nvmlDevice_t h;
    nvmlMemory_t m;
    static const char *const names[] = { "libnvidia-ml.so.1", "libnvidia-ml.so" };
    void *lib = NULL;
    for (int i = 0; i < 2 && !lib; i++)
        lib = dlopen(names[i], RTLD_LAZY | RTLD_LOCAL);     /* kept: NVML stays loaded */
    __typeof__(&nvmlInit_v2) init = lib ? REAL(nvmlInit_v2) : NULL;
    __typeof__(&nvmlDeviceGetHandleByPciBusId_v2) by_bus = lib ? REAL(nvmlDeviceGetHandleByPciBusId_v2) : NULL;
    __typeof__(&nvmlDeviceGetMemoryInfo) info = lib ? REAL(nvmlDeviceGetMemoryInfo) : NULL;
    if (init && by_bus && info && CALL_REAL(cuDeviceGetPCIBusId, bus, (int)sizeof(bus), dev) == CUDA_SUCCESS &&
        !init() && !by_bus(bus, &h) && !info(h, &m))
        return m.free;
    uint64_t at_start = atomic_load(&S.region->dev[dev].card_free);
    uint64_t job = atomic_load(&S.region->dev[dev].used);
    return at_start > job ? at_start - job : 0;
}

/* What the card has free before a context of this process is made on dev:
 * with one of them there already and current, the driver's own figure;
 * else card_free_before's. */
static uint64_t free_before(int dev)
{
    size_t free_b = 0, total_b = 0;
    if (atomic_load(&S.ctx_refs[dev]) > 0 && current_device() == dev &&
        CALL_REAL(cuMemGetInfo_v2, &free_b, &total_b) == CUDA_SUCCESS && free_b)
        return free_b;
    return card_free_before(dev);
}

/* A context of this process on dev was made: the first there, and every
 * one of its own (cuCtxCreate, own: a context costs what it costs however
 * many the process has), charges what it took from the card (measured with
 * it current) to the job, forced, since the job has it already.  Returns
 * what it charged. */
static uint64_t context_opened(int dev, CUcontext ctx, uint64_t before, bool own)
{
    if (!S.region || (unsigned)dev >= VRAM_SHIM_DEVICES)
        return 0;
    seen();
    if (atomic_fetch_add(&S.ctx_refs[dev], 1) != 0 && !own)
        return 0;
    size_t free_b = 0, total_b = 0, card = 0;
    CUcontext popped;
    if (ctx && CALL_REAL(cuCtxPushCurrent_v2, ctx) == CUDA_SUCCESS) {
        CALL_REAL(cuMemGetInfo_v2, &free_b, &total_b);
        CALL_REAL(cuCtxPopCurrent_v2, &popped);
    }
    if (CALL_REAL(cuDeviceTotalMem_v2, &card, dev) == CUDA_SUCCESS)
        atomic_store(&S.card_total[dev], card);
    uint64_t took = before > free_b && free_b ? before - free_b : 0;
    if (took > CTX_MAX_BYTES)
        took = 0;
    uint64_t over;
    charge(dev, took, true, &over);
    atomic_fetch_add(&S.ctx_charge[dev], took);
    vram_shim_raise(&S.region->dev[dev].ctx_bytes, took);
    return took;
}

/* A context of its own that charged `took` went while others remain on
 * dev: its charge goes back (its allocations stay counted: the shim cannot
 * tell them from the others'). */
static void context_gone(int dev, uint64_t took)
{
    uint64_t c = atomic_load(&S.ctx_charge[dev]);
    took = took < c ? took : c;
    atomic_fetch_sub(&S.ctx_charge[dev], took);
    uncharge(dev, took);
}

/* Whether table entry key/value is an allocation on device dev made before
 * its epoch changed. */
static bool stale_on(uint64_t key, uint64_t value, int dev)
{
    int kind = (int)(key >> 59), meta = PTRMAP_DEV(value);
    return kind >= PTRMAP_DEVPTR && kind <= PTRMAP_HANDLE && (meta & 15) == dev &&
           (meta >> 4) != (int)atomic_load(&S.epoch[dev]);
}

/* A context of this process on dev went; true when that left nothing to
 * do (the device is not one the shim counts, or it was the last).  With
 * the last went every allocation made there, so the process's bytes there
 * go back at once and
 * the table's entries for dev stop counting (a new epoch), and go: the
 * epoch has 4 bits, and an entry left over 16 of them would count again
 * (its free, of an address the driver handed out anew, gave its bytes back
 * a second time). */
static bool context_closed(int dev)
{
    if (!S.region || (unsigned)dev >= VRAM_SHIM_DEVICES)
        return true;
    int refs = atomic_load(&S.ctx_refs[dev]);
    while (refs > 0 && !atomic_compare_exchange_weak(&S.ctx_refs[dev], &refs, refs - 1))
        ;
    if (refs != 1)
        return false;
    atomic_store(&S.epoch[dev], (uint8_t)((atomic_load(&S.epoch[dev]) + 1) & 15));
    ptrmap_drop(&S.map, stale_on, dev);
    /* The pools' and the graph pool's bytes went with the context too. */
    int npools = atomic_load(&S.npools);
    for (int i = 0; i < npools; i++)
        if (atomic_load(&S.pools[i].dev) == dev) {
            atomic_store(&S.pools[i].live, 0);
            atomic_store(&S.pools[i].kept, 0);
        }
    atomic_store(&S.graph_charge[dev], 0);
    for (int l = 0; l < LIMITS; l++)
        atomic_store(&S.limit_charge[dev][l], 0);
    for (int i = 0; i < STREAMS; i++)
        atomic_store(&S.streams[i].bytes[dev], 0);
    atomic_store(&S.orphan[dev], 0);
    int slot = atomic_load(&S.slot);
    if (slot >= 0) {
        uint64_t b = vram_shim_slot_take(S.region, slot, dev);
        atomic_fetch_sub(&S.region->dev[dev].used, b);
    } else {
        uncharge(dev, atomic_load(&S.ctx_charge[dev]));
    }
    atomic_store(&S.ctx_charge[dev], 0);
    return true;
}

EXPORT CUresult cuInit(unsigned int flags)
{
    report();
    seen();
    return CALL_REAL(cuInit, flags);
}

EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    report();
    bool first = (unsigned)dev < VRAM_SHIM_DEVICES && S.region && !atomic_load(&S.ctx_refs[dev]);
    uint64_t before = first ? card_free_before(dev) : 0;
    CUresult rc = CALL_REAL(cuDevicePrimaryCtxRetain, pctx, dev);
    if (rc == CUDA_SUCCESS)
        context_opened(dev, pctx ? *pctx : NULL, before, false);
    return rc;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CUresult rc = CALL_REAL(cuDevicePrimaryCtxRelease_v2, dev);
    if (rc == CUDA_SUCCESS)
        context_closed(dev);
    return rc;
}

EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
    CUresult rc = CALL_REAL(cuDevicePrimaryCtxRelease, dev);
    if (rc == CUDA_SUCCESS)
        context_closed(dev);
    return rc;
}

/* A reset frees everything the primary context held, and keeps it
 * retained: the bytes go back, the context's own charge stays.  Not while
 * the process has a context of its own (cuCtxCreate) there too: what that
 * one holds lives on, and the shim cannot tell it from the primary's, so
 * the count stays high until the last context there goes. */
static void context_reset(int dev)
{
    if (!S.region || (unsigned)dev >= VRAM_SHIM_DEVICES || atomic_load(&S.ctx_refs[dev]) <= 0 ||
        atomic_load(&S.own_ctx[dev]) > 0)
        return;
    int refs = atomic_exchange(&S.ctx_refs[dev], 1);
    uint64_t ctx = atomic_load(&S.ctx_charge[dev]);
    context_closed(dev);
    uint64_t over;
    atomic_store(&S.ctx_refs[dev], refs);
    charge(dev, ctx, true, &over);
    atomic_store(&S.ctx_charge[dev], ctx);
}

EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    CUresult rc = CALL_REAL(cuDevicePrimaryCtxReset_v2, dev);
    if (rc == CUDA_SUCCESS)
        context_reset(dev);
    return rc;
}

EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
    CUresult rc = CALL_REAL(cuDevicePrimaryCtxReset, dev);
    if (rc == CUDA_SUCCESS)
        context_reset(dev);
    return rc;
}

/* A context's table entry: its device, and what it charged above it. */
#define CTX_VALUE(dev, took) ((uint64_t)(uint8_t)(dev) | (took) << 8)

#define CTX_CREATE(name, pctx, dev, ...)                                       \
    {                                                                          \
        report();                                                              \
        bool ours_ = (unsigned)(dev) < VRAM_SHIM_DEVICES && S.region;          \
        uint64_t before_ = ours_ ? free_before(dev) : 0, took_ = 0;           \
        CUresult rc_ = CALL_REAL(name, __VA_ARGS__);                           \
        if (rc_ == CUDA_SUCCESS && pctx && S.region) {                         \
            if (ours_) {                                                       \
                atomic_fetch_add(&S.own_ctx[dev], 1);                          \
                took_ = context_opened(dev, *(pctx), before_, true);           \
            }                                                                  \
            ptrmap_put(&S.map, PTRMAP_KEY(PTRMAP_CTX, (uintptr_t)*(pctx)),     \
                       CTX_VALUE(dev, took_));                                 \
        }                                                                      \
        return rc_;                                                            \
    }

EXPORT CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
    CTX_CREATE(cuCtxCreate, pctx, dev, pctx, flags, dev)
EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
    CTX_CREATE(cuCtxCreate_v2, pctx, dev, pctx, flags, dev)
EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *params, int n, unsigned int flags,
                               CUdevice dev)
    CTX_CREATE(cuCtxCreate_v3, pctx, dev, pctx, params, n, flags, dev)
EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags, CUdevice dev)
    CTX_CREATE(cuCtxCreate_v4, pctx, dev, pctx, params, flags, dev)

#define CTX_DESTROY(name, ctx)                                                 \
    {                                                                          \
        CUresult rc_ = CALL_REAL(name, ctx);                                   \
        uint64_t v_;                                                           \
        if (rc_ == CUDA_SUCCESS && S.region &&                                 \
            ptrmap_take(&S.map, PTRMAP_KEY(PTRMAP_CTX, (uintptr_t)(ctx)), &v_)) { \
            int dev_ = (int)(v_ & 0xff);                                       \
            if (dev_ < VRAM_SHIM_DEVICES)                                      \
                atomic_fetch_sub(&S.own_ctx[dev_], 1);                         \
            if (!context_closed(dev_))                                         \
                context_gone(dev_, v_ >> 8);                                   \
        }                                                                      \
        return rc_;                                                            \
    }

EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx) CTX_DESTROY(cuCtxDestroy_v2, ctx)
EXPORT CUresult cuCtxDestroy(CUcontext ctx) CTX_DESTROY(cuCtxDestroy, ctx)

/* ---- context limits ----
 *
 * The malloc heap and the printf FIFO are bytes the driver keeps for the
 * context, and the stack size is bytes for every thread the device can
 * hold at once (its SMs times their most threads).  A raise counts from
 * the call, what it adds to what the context had (its first measure holds
 * the defaults), and past the budget it is refused with
 * CUDA_ERROR_OUT_OF_MEMORY, the driver's own answer when the card lacks
 * room; lowering a limit gives back what raising it charged. */

/* What limit at value v keeps on dev, in bytes; 0 when it cannot be known
 * (not a limit of memory, or the device will not say its threads). */
static uint64_t limit_bytes(int limit, uint64_t v, int dev)
{
    int sms = 0, threads = 0;
    if (limit == CU_LIMIT_PRINTF_FIFO_SIZE || limit == CU_LIMIT_MALLOC_HEAP_SIZE)
        return v;
    if (limit != CU_LIMIT_STACK_SIZE ||
        CALL_REAL(cuDeviceGetAttribute, &sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev) != CUDA_SUCCESS ||
        CALL_REAL(cuDeviceGetAttribute, &threads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, dev) !=
            CUDA_SUCCESS || sms <= 0 || threads <= 0)
        return 0;
    return mul_sat(v, mul_sat((uint64_t)sms, (uint64_t)threads));
}

EXPORT CUresult cuCtxSetLimit(int limit, size_t value)
{
    int dev = S.region && limit >= 0 && limit < LIMITS ? current_device() : -1;
    size_t cur = 0;
    if ((unsigned)dev >= VRAM_SHIM_DEVICES || CALL_REAL(cuCtxGetLimit, &cur, limit) != CUDA_SUCCESS)
        return CALL_REAL(cuCtxSetLimit, limit, value);
    uint64_t was = limit_bytes(limit, cur, dev), want = limit_bytes(limit, value, dev), over;
    _Atomic uint64_t *charged = &S.limit_charge[dev][limit];
    if (want > was && charge(dev, want - was, false, &over))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CALL_REAL(cuCtxSetLimit, limit, value);
    if (want > was) {
        if (rc != CUDA_SUCCESS)
            uncharge(dev, want - was);
        else
            atomic_fetch_add(charged, want - was);
    } else if (rc == CUDA_SUCCESS && was > want) {
        uint64_t c = atomic_load(charged), give;
        do
            give = c < was - want ? c : was - want;
        while (give && !atomic_compare_exchange_weak(charged, &c, c - give));
        uncharge(dev, give);
    }
    return rc;
}

/* ---- handing out entry points: cuGetProcAddress, dlsym, dlvsym ---- */

static void *const hook_addr[HOOK_COUNT];

NO_SAN static bool is_our_hook(const void *p)
{
    for (int i = 0; i < HOOK_COUNT; i++)
        if (p && hook_addr[i] == p)
            return true;
    return false;
}

NO_SAN static int find_hook(const char *name)
{
    if (!name || (name[0] != 'c' && name[0] != 'n'))
        return -1;
    for (int i = 0; i < HOOK_COUNT; i++)
        if (hook_info[i].hooked && same(hook_info[i].name, name))
            return i;
    return -1;
}

/* What to hand out for symbol `name` (the exact name, as dlsym is asked)
 * whose real address is p. */
NO_SAN static void *interpose_exact(const char *name, void *p)
{
    int i = find_hook(name);
    if (i < 0 || !p || is_our_hook(p))
        return p;                   /* what a sanitizer starting up asks ends here */
    void *none = NULL;
    atomic_compare_exchange_strong(&S.real[i], &none, p);
    report();
    return hook_addr[i];
}

/* What to hand out when cuGetProcAddress answered p for base name `sym` at
 * `version` with `flags`: the hook whose real entry point p is, else the
 * row the version and the stream flag choose, else p itself. */
static void *interpose_proc(const char *sym, void *p, int version, cuuint64_t flags)
{
    if (!sym || !p || is_our_hook(p))
        return p;
    int best = -1, rows = 0;
    bool ptds = flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
    /* The driver may answer a name with an entry point of another name
     * (cuGraphInstantiate at 12000 is cuGraphInstantiateWithFlags): the
     * address says which ABI it has. */
    for (int i = 0; i < HOOK_COUNT; i++)
        if (hook_info[i].hooked && hook_info[i].lib == LIB_CUDA && peek_real(i) == p)
            return hook_addr[i];
    for (int i = 0; i < HOOK_COUNT; i++) {
        if (!hook_info[i].hooked || strcmp(hook_info[i].base, sym))
            continue;
        rows++;
        /* Not by version: the name changed its ABI at 12000. */
        if (version >= 12000 && !strcmp(sym, "cuGraphInstantiate"))
            continue;
        if (hook_info[i].since > version || (hook_info[i].ptds && !ptds))
            continue;
        if (best < 0 || hook_info[i].since > hook_info[best].since ||
            (hook_info[i].since == hook_info[best].since && hook_info[i].ptds))
            best = i;
    }
    if (best < 0) {
        if (rows)
            say_once(SAY_UNKNOWN, "cuGetProcAddress(\"%.64s\", %d) gave an entry point the shim does not know;"
                     " it passes through uncounted", sym, version);
        return p;
    }
    void *none = NULL;
    atomic_compare_exchange_strong(&S.real[best], &none, p);
    return hook_addr[best];
}

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    report();
    CUresult rc = CALL_REAL(cuGetProcAddress, symbol, pfn, version, flags);
    if (rc == CUDA_SUCCESS && pfn)
        *pfn = interpose_proc(symbol, *pfn, version, flags);
    return rc;
}

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                                    CUdriverProcAddressQueryResult *status)
{
    report();
    CUresult rc = CALL_REAL(cuGetProcAddress_v2, symbol, pfn, version, flags, status);
    if (rc == CUDA_SUCCESS && pfn)
        *pfn = interpose_proc(symbol, *pfn, version, flags);
    return rc;
}

/* cudart and the frameworks reach the driver through dlsym on its handle,
 * which LD_PRELOAD alone does not catch.  RTLD_NEXT asks about the caller's
 * place in the search order, so the entry points below jump to libc's
 * dlsym with the caller's return address intact for it, but for a name the
 * shim interposes, which they answer with its hook (from a library after
 * the shim, what comes next is the driver); everything else comes here. */
HIDDEN void *vram__shim_next_hook(const char *name);
HIDDEN void *vram__shim_dlsym(void *handle, const char *name);
HIDDEN void *vram__shim_dlvsym(void *handle, const char *name, const char *version);

/* The hook for dlsym(RTLD_NEXT, name) when the shim interposes name and
 * the driver has it; NULL for every other name (a sanitizer starting up
 * asks for libc's). */
NO_SAN void *vram__shim_next_hook(const char *name)
{
    find_libc_dl();
    int i = find_hook(name);
    if (i < 0 || !peek_real(i))
        return NULL;
    report();
    return hook_addr[i];
}

NO_SAN void *vram__shim_dlsym(void *handle, const char *name)
{
    find_libc_dl();
    if (!vram__shim_libc_dlsym)
        return NULL;
    return interpose_exact(name, vram__shim_libc_dlsym(handle, name));
}

NO_SAN void *vram__shim_dlvsym(void *handle, const char *name, const char *version)
{
    find_libc_dl();
    if (!vram__shim_libc_dlvsym)
        return NULL;
    return interpose_exact(name, vram__shim_libc_dlvsym(handle, name, version));
}

#if defined(__x86_64__)
/* RTLD_NEXT: to libc's, found first if need be (the three argument
 * registers saved around the call, which also aligns the stack). */
#define SHIM_NEXT_ENTRY(name, real, impl)                                      \
    ".globl " name "\n.type " name ",@function\n"                             \
    name ":\n"                                                                \
    "  cmpq $-1, %rdi\n"                                                      \
    "  jne " impl "\n"                                                        \
    "  pushq %rdi\n  pushq %rsi\n  pushq %rdx\n"                               \
    "  movq %rsi, %rdi\n"                                                     \
    "  call vram__shim_next_hook\n"                                           \
    "  popq %rdx\n  popq %rsi\n  popq %rdi\n"                                  \
    "  testq %rax, %rax\n"                                                    \
    "  jnz 2f\n"                                                              \
    "  movq " real "(%rip), %rax\n"                                           \
    "  testq %rax, %rax\n"                                                    \
    "  jz " impl "\n"                                                         \
    "  jmp *%rax\n"                                                           \
    "2:\n  ret\n"                                                             \
    ".size " name ", .-" name "\n"
__asm__(".text\n"
        SHIM_NEXT_ENTRY("dlsym", "vram__shim_libc_dlsym", "vram__shim_dlsym")
        SHIM_NEXT_ENTRY("dlvsym", "vram__shim_libc_dlvsym", "vram__shim_dlvsym"));
#else
/* Elsewhere RTLD_NEXT is answered from the shim's place, not the caller's. */
EXPORT void *dlsym(void *handle, const char *name)
{
    return vram__shim_dlsym(handle, name);
}

EXPORT void *dlvsym(void *handle, const char *name, const char *version)
{
    return vram__shim_dlvsym(handle, name, version);
}
#endif

static void *const hook_addr[HOOK_COUNT] = {
#define HOOK_ADDR_1(sym) (void *)&sym
#define HOOK_ADDR_0(sym) NULL
#define X(lib, sym, base, since, ptds, hooked) [HOOK_##sym] = HOOK_ADDR_##hooked(sym),
    SHIM_HOOK_LIST(X)
#undef X
};
