/* SPDX-License-Identifier: MIT */
/*
 * runner/enforce.c - gives a job the shim: finds libvram_shim.so, makes the
 * region its processes count into, puts both in the job's environment, and
 * reads the job's usage, peak and overage back from the region.
 *
 * Owns the runner's side of enforcement and nothing else: the region's
 * layout is src/shim/region.h (shared with the shim, which libvram never
 * links), and run.c decides when to call what.  The region is a memfd:
 * owner-only, never a path in /tmp, handed down as an inherited descriptor,
 * sealed at its size (the job may write it, never shrink it under us).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/runner.h"
#include "shim/region.h"

#define SHIM_NAME "libvram_shim.so"

/* A sanitizer build's runtime must be the first library of every program
 * it is in; preloading the shim by default would break the jobs of the
 * test builds, so there it is used only when asked for. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_ENFORCE false
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DEFAULT_ENFORCE false
#endif
#endif
#ifndef DEFAULT_ENFORCE
#define DEFAULT_ENFORCE true
#endif

static bool usable(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, R_OK);
}

/* dir is a folder holding libvram or the program: the shim is beside it
 * (the build tree's build/lib) or in its vram/ folder (LIBDIR/vram). */
static bool look_in(const char *dir, char *buf, size_t cap)
{
#ifndef VRAM_MULTIARCH
#define VRAM_MULTIARCH ""
#endif
    /* bin/../lib/<multiarch>/vram/ is where make install puts it. */
    static const char *const rel[] = { "", "vram/", "../lib/", "../lib/vram/", "../../lib/",
                                       "../lib/" VRAM_MULTIARCH "/vram/" };
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        if ((size_t)snprintf(buf, cap, "%s/%s" SHIM_NAME, dir, rel[i]) < cap && usable(buf))
            return true;
    }
    return false;
}

/* Where the shim was found last (looked for again when it is gone): each
 * job's start looks twice, and a reused runner starts many. */
static char found[4096];
static pthread_mutex_t found_lock = PTHREAD_MUTEX_INITIALIZER;

static int find_shim(char *buf, size_t cap);

int vram__enforce_find_shim(char *buf, size_t cap)
{
    const char *env = getenv("VRAM_SHIM_LIBRARY");
    if (env && *env) {
        if (!usable(env))
            return vram__fail(VRAM_ENOENT, "VRAM_SHIM_LIBRARY=%s: no such library", env);
        vram__strlcpy(buf, env, cap);
        return 0;
    }
    char last[sizeof(found)];
    pthread_mutex_lock(&found_lock);
    memcpy(last, found, sizeof(last));
    pthread_mutex_unlock(&found_lock);
    if (*last && strlen(last) < cap && usable(last)) {
        vram__strlcpy(buf, last, cap);
        return 0;
    }
    int rc = find_shim(buf, cap);
    if (!rc && strlen(buf) < sizeof(found)) {
        pthread_mutex_lock(&found_lock);
        vram__strlcpy(found, buf, sizeof(found));
        pthread_mutex_unlock(&found_lock);
    }
    return rc;
}

static int find_shim(char *buf, size_t cap)
{
    char dir[4096];
    Dl_info info;
    if (dladdr((void *)&vram__enforce_find_shim, &info) && info.dli_fname && *info.dli_fname) {
        vram__strlcpy(dir, info.dli_fname, sizeof(dir));
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            if (look_in(dir, buf, cap))
                return 0;
        }
    }
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n > 0) {
        dir[n] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            if (look_in(dir, buf, cap))
                return 0;
        }
    }
#ifdef VRAM_PKGLIBDIR
    /* Where make install put it (LIBDIR/vram, multiarch). */
    if ((size_t)snprintf(buf, cap, "%s/" SHIM_NAME, VRAM_PKGLIBDIR) < cap && usable(buf))
        return 0;
#endif
    return vram__fail(VRAM_ENOENT, SHIM_NAME " is not beside libvram nor in its vram/ folder");
}

int vram__enforce_mode(const char *text, int *mode)
{
#define X(id, v, name) if (text && !strcmp(text, name)) { *mode = VRAM_SHIM_##id; return 0; }
    VRAM_SHIM_MODE_LIST(X)
#undef X
    return vram__fail(VRAM_EINVAL, "enforce '%s' is not hard, soft or off", text ? text : "");
}

int vram__enforce_open(vram__enforce *e, const char *mode, uint64_t budget_bytes)
{
    memset(e, 0, sizeof(*e));
    e->fd = -1;
    bool asked = mode && *mode;
    int m = VRAM_SHIM_HARD;
    int rc;
    if (asked && (rc = vram__enforce_mode(mode, &m)))
        return rc;
    if (m == VRAM_SHIM_OFF || (!asked && !DEFAULT_ENFORCE))
        return 0;
    if ((rc = vram__enforce_find_shim(e->library, sizeof(e->library)))) {
        if (!asked) {               /* the default where the shim is not built: off */
            vram__clear_error();
            return 0;
        }
        char why[512];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return vram__fail(rc, "cannot enforce '%s': %s", mode, why);
    }
    if (!budget_bytes)
        return vram__fail(VRAM_EINVAL, "cannot enforce a budget of 0 bytes");
    e->fd = memfd_create("vram-shim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (e->fd < 0)
        return vram__fail(VRAM_EIO, "cannot make the job's shared count: memfd_create: %s", strerror(errno));
    fchmod(e->fd, 0600);
    void *p = MAP_FAILED;
    /* Sealed at its size: the job holds the descriptor, and a region it
     * truncated would kill this process with SIGBUS at its next read. */
    if (ftruncate(e->fd, (off_t)sizeof(vram_shim_region)) ||
        fcntl(e->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) ||
        (p = mmap(NULL, sizeof(vram_shim_region), PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0)) == MAP_FAILED) {
        rc = vram__fail(VRAM_EIO, "cannot map the job's shared count: %s", strerror(errno));
        close(e->fd);
        e->fd = -1;
        return rc;
    }
    e->region = p;
    vram_shim_region_init(e->region, (uint32_t)m, budget_bytes);
    e->mode = m;
    return 0;
}

void vram__enforce_close(vram__enforce *e)
{
    if (!e)
        return;
    if (!e->region)                 /* also a zeroed one, whose fd 0 is not ours */
        return;
    munmap(e->region, sizeof(vram_shim_region));
    close(e->fd);
    e->region = NULL;
    e->fd = -1;
}

_Static_assert(VRAM__ENFORCE_DEVICES == VRAM_SHIM_DEVICES, "runner.h and shim/region.h count devices alike");

int vram__enforce_budget(vram__enforce *e, int dev, uint64_t bytes)
{
    if (dev < 0 || dev >= VRAM_SHIM_DEVICES)
        return vram__fail(VRAM_EINVAL, "device %d is not one the shim counts (0 to %d)", dev,
                          VRAM_SHIM_DEVICES - 1);
    if (vram__enforce_on(e))
        e->region->dev[dev].budget = bytes;
    return 0;
}

void vram__enforce_card_free(vram__enforce *e, int dev, uint64_t free_bytes)
{
    if (vram__enforce_on(e) && dev >= 0 && dev < VRAM_SHIM_DEVICES)
        atomic_store(&e->region->dev[dev].card_free, free_bytes);
}

bool vram__enforce_on(const vram__enforce *e)
{
    return e && e->region;
}

const char *vram__enforce_mode_name(const vram__enforce *e)
{
#define X(id, v, name) if (e && e->region && e->mode == VRAM_SHIM_##id) return name;
    VRAM_SHIM_MODE_LIST(X)
#undef X
    return "off";
}

void vram__enforce_env(const vram__enforce *e, void (*put)(void *user, const char *key, const char *value),
                       void *user)
{
    if (!vram__enforce_on(e))
        return;
    char text[32];
    snprintf(text, sizeof(text), "%d", e->fd);
    put(user, VRAM_SHIM_ENV_FD, text);
    put(user, VRAM_SHIM_ENV_MODE, vram__enforce_mode_name(e));
    /* The job's own LD_PRELOAD comes first, as it asked; a shim already
     * there (a vram run inside a job) is not loaded twice. */
    const char *old = getenv("LD_PRELOAD");
    if (old && strstr(old, SHIM_NAME)) {
        put(user, "LD_PRELOAD", old);
        return;
    }
    size_t len = (old ? strlen(old) : 0) + strlen(e->library) + 2;
    char *v = malloc(len);
    if (!v)
        return;
    snprintf(v, len, "%s%s%s", old && *old ? old : "", old && *old ? ":" : "", e->library);
    put(user, "LD_PRELOAD", v);
    free(v);
}

void vram__enforce_inherit(const vram__enforce *e, bool inherit)
{
    if (!vram__enforce_on(e))
        return;
    int flags = fcntl(e->fd, F_GETFD);
    if (flags >= 0)
        fcntl(e->fd, F_SETFD, inherit ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC);
}

/* The start time (clock ticks) of pid, and whether it is a zombie; 0 when
 * it is gone. */
static uint64_t proc_start(int32_t pid, bool *zombie)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    *zombie = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p || !p[1] || !p[2])
        return 0;
    *zombie = p[2] == 'Z' || p[2] == 'X';
    for (int field = 2; field < 22 && *p; p++)
        if (*p == ' ')
            field++;
    return strtoull(p, NULL, 10);
}

/* The region's pages that hold anything (*vec, one byte a page, bit 0): a
 * page no process ever wrote is not there, and reading it would make it
 * (a fault and a zeroed page each: most of a short job's runner time went
 * into the 256 slots' first read).  False when the kernel cannot say. */
#define REGION_PAGES(page) ((sizeof(vram_shim_region) + (page) - 1) / (page))

static bool region_pages(const vram__enforce *e, unsigned char *vec, size_t cap, size_t *page)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || REGION_PAGES((size_t)ps) > cap)
        return false;
    *page = (size_t)ps;
    return mincore(e->region, sizeof(vram_shim_region), vec) == 0;
}

uint64_t vram__enforce_reclaim(vram__enforce *e)
{
    if (!vram__enforce_on(e))
        return 0;
    uint64_t total = 0;
    unsigned char vec[REGION_PAGES(4096)];
    size_t page = 0;
    bool known = region_pages(e, vec, sizeof(vec), &page);
    for (int i = 0; i < VRAM_SHIM_SLOTS; i++) {
        size_t at = (size_t)((const char *)&e->region->slot[i].pid - (const char *)e->region);
        if (known && !(vec[at / page] & 1))
            continue;               /* never written: no process took the slot */
        int32_t pid = atomic_load(&e->region->slot[i].pid);
        if (pid <= 0)
            continue;
        uint64_t want = atomic_load(&e->region->slot[i].start_ticks);
        bool zombie;
        uint64_t start = proc_start(pid, &zombie);
        bool gone = (kill(pid, 0) && errno == ESRCH) || !start || zombie || (want && start != want);
        if (gone)
            total += vram_shim_slot_reclaim(e->region, i);
    }
    return total;
}

void vram__enforce_read(vram__enforce *e, vram__enforce_count *out)
{
    memset(out, 0, sizeof(*out));
    if (!vram__enforce_on(e))
        return;
    vram__enforce_reclaim(e);
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++) {
        vram_shim_dev *dv = &e->region->dev[d];
        out->used_bytes += atomic_load(&dv->used);
        out->over_bytes += atomic_load(&dv->over_peak);
        out->refused += atomic_load(&dv->refused);
        out->dev_used[d] = atomic_load(&dv->used);
        out->dev_refused[d] = atomic_load(&dv->refused);
        uint64_t ctx = atomic_load(&dv->ctx_bytes);
        if (ctx > out->ctx_bytes)
            out->ctx_bytes = ctx;
    }
    out->peak_bytes = vram_shim_region_peak(e->region);
    out->processes = atomic_load(&e->region->attached);
    out->cuda_seen = atomic_load(&e->region->cuda_seen) != 0;
}
