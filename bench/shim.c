/* SPDX-License-Identifier: MIT */
/*
 * bench/shim.c - what the shim adds to an allocate-and-free pair: the stub
 * driver's cuMemAlloc_v2/cuMemFree_v2 called directly and through the
 * shim's hooks, side by side in one run, on one thread, on eight at once on
 * one device, on eight at once each on a device of its own, and the
 * stream-ordered pair (cuMemAllocAsync/cuMemFreeAsync) on one.
 *
 * Both libraries are loaded from this build (BUILD/stubs/cuda/libcuda.so.1,
 * BUILD/lib/libvram_shim.so) with dlopen, so the hooks run exactly the code
 * they run under LD_PRELOAD (counting into a region of their own, from
 * VRAM_BUDGET_BYTES).  Target: at most 100 ns added per pair on one thread;
 * the bench exits 1 past it.  --seconds S sets the time per measurement.
 *
 * Bounded whatever the machine does: the loop sizes come from a
 * calibration that stops at a time box and are kept between a floor and a
 * cap; each measurement also stops at a deadline (its figure is then over
 * the pairs it did); and an alarm ends the run with exit status 3 if it
 * still runs past a limit.  Each row is the median of ROUNDS rounds, the
 * two ways taking turns (which goes first alternates), so that both see the
 * same machine and one slow round moves nothing.
 *
 * Last, what every process of a job pays to load the shim: /bin/true
 * started and waited for, with the shim preloaded and a job's region at a
 * descriptor (as a runner hands them down), against the same without the
 * shim, in the same turns.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "bench.h"
#include "shim/cuda_types.h"
#include "shim/region.h"

#define TARGET_ADDED_NS 100.0
#define THREADS 8
#define ROUNDS 9
#define SIZE 4096
#define CAL_BOX_S 0.25              /* calibration stops after this long */
#define PAIRS_FLOOR 20000L
#define PAIRS_CAP 4000000L
#define CHECK_EVERY 1024            /* pairs between looks at the deadline */
#define START_PROGRAM "/bin/true"
#define STARTS_FLOOR 20             /* processes a start measurement runs, at least */
#define STARTS_CAP 2000

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*free_fn)(CUdeviceptr);

typedef CUresult (*alloc_async_fn)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*free_async_fn)(CUdeviceptr, CUstream);
typedef CUresult (*sync_fn)(CUstream);

/* A pair of calls; with alloc_async set, the stream-ordered pair, and the
 * stream synchronized every SYNC_EVERY pairs (where the shim settles). */
typedef struct pair {
    alloc_fn alloc;
    free_fn free;
    alloc_async_fn alloc_async;
    free_async_fn free_async;
    sync_fn sync;
} pair;
#define SYNC_EVERY 64

static CUcontext ctx[THREADS];      /* device i's primary context */
static int ndev;
static CUresult (*set_current)(CUcontext);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct job {
    const pair *p;
    long pairs;                     /* to do */
    long done;                      /* done, when the deadline cut it short */
    long errors;
    int dev;
    double deadline;
    pthread_barrier_t *start;
    double t0, t1;                  /* when this thread began and ended its pairs */
} job;

static void *loop(void *arg)
{
    job *j = arg;
    set_current(ctx[j->dev]);
    if (j->start)
        pthread_barrier_wait(j->start);
    j->t0 = now_s();
    const pair *p = j->p;
    long i = 0;
    if (p->alloc_async) {
        CUstream s = (CUstream)0x1;
        for (; i < j->pairs; i++) {
            CUdeviceptr d;
            if (p->alloc_async(&d, SIZE, s) || p->free_async(d, s))
                j->errors++;
            if (i % SYNC_EVERY == SYNC_EVERY - 1 && p->sync(s))
                j->errors++;
            if (i % CHECK_EVERY == CHECK_EVERY - 1 && now_s() > j->deadline) {
                i++;
                break;
            }
        }
        if (p->sync(s))
            j->errors++;
    } else {
        for (; i < j->pairs; i++) {
            CUdeviceptr d;
            if (p->alloc(&d, SIZE) || p->free(d))
                j->errors++;
            if (i % CHECK_EVERY == CHECK_EVERY - 1 && now_s() > j->deadline) {
                i++;
                break;
            }
        }
    }
    j->done = i;
    j->t1 = now_s();
    return NULL;
}

/* ns per pair with `threads` threads each doing `pairs` pairs (on device
 * 0, or thread i on device i when spread): wall time over the pairs one
 * thread did (what each thread sees).  The threads time themselves, first
 * start to last end: on a loaded machine the main thread may wake from the
 * barrier after they have finished.  No measurement runs past max_s. */
static double measure(const pair *p, int threads, bool spread, long pairs, double max_s, long *errors)
{
    pthread_t t[THREADS];
    job j[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    double deadline = now_s() + max_s;
    for (int i = 0; i < threads; i++) {
        j[i] = (job){ p, pairs, 0, 0, spread ? i % ndev : 0, deadline, &start, 0, 0 };
        pthread_create(&t[i], NULL, loop, &j[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = 1e300, t1 = 0;
    long done = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        *errors += j[i].errors;
        done += j[i].done;
        t0 = j[i].t0 < t0 ? j[i].t0 : t0;
        t1 = j[i].t1 > t1 ? j[i].t1 : t1;
    }
    pthread_barrier_destroy(&start);
    double per_thread = (double)done / threads;
    return (t1 - t0) * 1e9 / (per_thread > 0 ? per_thread : 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One measurement of a row, without the shim or with it; below 0 when it
 * could not be made. */
typedef double (*way_fn)(void *arg, bool with_shim);

/* The median of ROUNDS rounds of each way, taking turns, the one going
 * first alternating, into *without and *with, and the middle half of the
 * rounds' added cost into *added_lo and *added_hi; false when a
 * measurement could not be made. */
static bool in_turns(way_fn way, void *arg, double *without, double *with, double *added_lo, double *added_hi)
{
    double a[ROUNDS], b[ROUNDS], add[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        if (r % 2) {
            b[r] = way(arg, true);
            a[r] = way(arg, false);
        } else {
            a[r] = way(arg, false);
            b[r] = way(arg, true);
        }
        if (a[r] < 0 || b[r] < 0)
            return false;
        add[r] = b[r] - a[r];
    }
    *without = median(a, ROUNDS);
    *with = median(b, ROUNDS);
    median(add, ROUNDS);
    *added_lo = add[ROUNDS / 4];
    *added_hi = add[ROUNDS - 1 - ROUNDS / 4];
    return true;
}

/* A row of pairs: the calls direct and through the shim. */
typedef struct pair_row {
    const pair *direct, *shim;
    int threads;
    bool spread;
    long pairs;
    double max_s;
    long *errors;
} pair_row;

static double pair_way(void *arg, bool with_shim)
{
    pair_row *r = arg;
    return measure(with_shim ? r->shim : r->direct, r->threads, r->spread, r->pairs, r->max_s, r->errors);
}

static void compare(const pair *direct, const pair *shim, int threads, bool spread, long pairs, double max_s,
                    double *d_ns, double *s_ns, double *added_lo, double *added_hi, long *errors)
{
    pair_row row = { direct, shim, threads, spread, pairs, max_s, errors };
    in_turns(pair_way, &row, d_ns, s_ns, added_lo, added_hi);
}

/* Pairs that take about `seconds` through the shim (the slower way): from
 * batches doubling from 1000 until one takes a fortieth of the time box or
 * the box is spent; between PAIRS_FLOOR and PAIRS_CAP whatever it saw. */
static long calibrate(const pair *p, double seconds, long *errors)
{
    double box_end = now_s() + CAL_BOX_S, ns = 0;
    for (long n = 1000; n <= PAIRS_CAP; n *= 2) {
        double t0 = now_s();
        ns = measure(p, 1, false, n, CAL_BOX_S, errors);
        double t1 = now_s();
        if (t1 - t0 >= CAL_BOX_S / 40 || t1 >= box_end)
            break;
    }
    double want = ns > 0 ? seconds * 1e9 / ns : (double)PAIRS_FLOOR;
    return want < PAIRS_FLOOR ? PAIRS_FLOOR : want > PAIRS_CAP ? PAIRS_CAP : (long)want;
}

static void *must(void *h, const char *name)
{
    void *p = h ? dlsym(h, name) : NULL;
    if (!p)
        fprintf(stderr, "bench/shim: no %s: %s\n", name, dlerror());
    return p;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "bench/shim: still running past its time limit; stopped (exit 3)\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(3);
}

/* Microseconds a start of START_PROGRAM takes, to its exit, in the
 * environment env: the mean over n starts, or over those done by the
 * deadline; -1 when one cannot be started. */
static double starts_us(char *const env[], long n, double max_s)
{
    char *argv[] = { (char *)START_PROGRAM, NULL };
    double t0 = now_s(), deadline = t0 + max_s;
    long i = 0;
    for (; i < n; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, START_PROGRAM, NULL, NULL, argv, env) != 0 ||
            waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return -1;
        if (now_s() > deadline) {
            i++;
            break;
        }
    }
    return (now_s() - t0) * 1e6 / (double)i;
}

/* A row of starts: START_PROGRAM n times, in one environment or the other. */
typedef struct start_row {
    char **plain_env, **shim_env;
    long n;
    double max_s;
} start_row;

static double start_way(void *arg, bool with_shim)
{
    start_row *r = arg;
    return starts_us(with_shim ? r->shim_env : r->plain_env, r->n, r->max_s);
}

/* The start row, in turns as the others; false when a start failed. */
static bool compare_starts(const char *shim_path, double seconds, double max_s, double *plain_us,
                           double *shim_us, double *added_lo, double *added_hi)
{
    int fd = memfd_create("vram-bench-region", 0);     /* kept across the exec, as a runner's is */
    vram_shim_region *r = MAP_FAILED;
    if (fd < 0 || ftruncate(fd, sizeof(*r)) != 0 ||
        (r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        fprintf(stderr, "bench/shim: cannot make a job's region: %s\n", strerror(errno));
        return false;
    }
    vram_shim_region_init(r, VRAM_SHIM_HARD, 1ull << 40);
    char fd_var[64], preload[4300];
    snprintf(fd_var, sizeof(fd_var), "%s=%d", VRAM_SHIM_ENV_FD, fd);
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", shim_path);
    char *plain_env[] = { fd_var, NULL }, *shim_env[] = { fd_var, preload, NULL };
    double one = starts_us(shim_env, STARTS_FLOOR, max_s);
    long n = one > 0 ? (long)(seconds * 1e6 / one) : 0;
    start_row row = { plain_env, shim_env, n < STARTS_FLOOR ? STARTS_FLOOR : n > STARTS_CAP ? STARTS_CAP : n, max_s };
    bool ok = one > 0 && in_turns(start_way, &row, plain_us, shim_us, added_lo, added_hi);
    if (!ok)
        fprintf(stderr, "bench/shim: %s did not start and exit 0\n", START_PROGRAM);
    munmap(r, sizeof(*r));
    close(fd);
    return ok;
}

static void row(const char *name, double d, double s, double lo, double hi)
{
    printf("%-26s %11.1f ns %11.1f ns %+9.1f ns %7.2fx   %+.0f to %+.0f\n", name, d, s, s - d, s / d, lo, hi);
}

int main(int argc, char **argv)
{
    double seconds = 0.2;
    const bench_opt opts[] = { { .name = "--seconds", .value = &seconds, .min = 0.01, .max = 3600 } };
    int arc = bench_args(argc, argv, "bench/shim", "[--seconds S]", opts, 1);
    if (arc)
        return arc == 1 ? 0 : 2;
    if (!(seconds > 0 && seconds <= 10)) {
        fprintf(stderr, "bench/shim: --seconds must be above 0 and at most 10\n");
        return 2;
    }
    /* Each measurement stops at 4x its planned time; rows x rounds x 2 of
     * them, plus calibration and set-up, fit well inside the alarm. */
    double max_s = 4 * seconds + 0.05;
    unsigned limit = (unsigned)(5 * ROUNDS * 2 * max_s + 30);
    signal(SIGALRM, on_alarm);
    alarm(limit);

    char build[4096], path[4200];
    if (!bench_build_dir(build, sizeof(build))) {
        fprintf(stderr, "bench/shim: cannot tell the build folder\n");
        return 2;
    }
    setenv("VRAM_BUDGET_BYTES", "1TiB", 1);     /* counts everything, refuses nothing */
    setenv("VRAM_ENFORCE", "hard", 1);
    setenv("VRAM_STUB_CUDA_DEVICES", "8", 1);   /* a device per thread for the spread row */
    unsetenv("VRAM_SHIM_FD");
    snprintf(path, sizeof(path), "%s/stubs/cuda/libcuda.so.1", build);
    void *stub = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!stub) {
        fprintf(stderr, "bench/shim: %s (run make first)\n", dlerror());
        return 2;
    }
    snprintf(path, sizeof(path), "%s/lib/libvram_shim.so", build);
    void *shim = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!shim) {
        fprintf(stderr, "bench/shim: %s (run make first)\n", dlerror());
        return 2;
    }
    CUresult (*init)(unsigned) = must(stub, "cuInit");
    CUresult (*count)(int *) = must(stub, "cuDeviceGetCount");
    CUresult (*retain)(CUcontext *, CUdevice) = must(stub, "cuDevicePrimaryCtxRetain");
    *(void **)&set_current = must(stub, "cuCtxSetCurrent");
    pair direct = { (alloc_fn)must(stub, "cuMemAlloc_v2"), (free_fn)must(stub, "cuMemFree_v2"), NULL, NULL, NULL };
    pair hooked = { (alloc_fn)must(shim, "cuMemAlloc_v2"), (free_fn)must(shim, "cuMemFree_v2"), NULL, NULL, NULL };
    pair direct_async = { NULL, NULL, (alloc_async_fn)must(stub, "cuMemAllocAsync"),
                          (free_async_fn)must(stub, "cuMemFreeAsync"), (sync_fn)must(stub, "cuStreamSynchronize") };
    pair hooked_async = { NULL, NULL, (alloc_async_fn)must(shim, "cuMemAllocAsync"),
                          (free_async_fn)must(shim, "cuMemFreeAsync"), (sync_fn)must(shim, "cuStreamSynchronize") };
    if (!init || !count || !retain || !set_current || !direct.alloc || !direct.free || !hooked.alloc ||
        !hooked.free || !direct_async.alloc_async || !direct_async.free_async || !direct_async.sync ||
        !hooked_async.alloc_async || !hooked_async.free_async || !hooked_async.sync)
        return 2;
    if (init(0) || count(&ndev) || ndev < 1) {
        fprintf(stderr, "bench/shim: the stub driver has no device\n");
        return 2;
    }
    ndev = ndev > THREADS ? THREADS : ndev;
    for (int d = 0; d < ndev; d++)
        if (retain(&ctx[d], d)) {
            fprintf(stderr, "bench/shim: the stub driver would not make a context on device %d\n", d);
            return 2;
        }
    set_current(ctx[0]);

    long errors = 0;
    long pairs = calibrate(&hooked, seconds, &errors);

    double d1, s1, d8, s8, dd, sd, da, sa, lo1, hi1, lo8, hi8, lod, hid, loa, hia;
    compare(&direct, &hooked, 1, false, pairs, max_s, &d1, &s1, &lo1, &hi1, &errors);
    compare(&direct, &hooked, THREADS, false, pairs / THREADS + 1, max_s, &d8, &s8, &lo8, &hi8, &errors);
    compare(&direct, &hooked, THREADS, true, pairs / THREADS + 1, max_s, &dd, &sd, &lod, &hid, &errors);
    compare(&direct_async, &hooked_async, 1, false, pairs / 4 + 1, max_s, &da, &sa, &loa, &hia, &errors);

    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    printf("shim: one cuMemAlloc_v2 + cuMemFree_v2 of %d bytes on the stub driver, median of %d rounds "
           "(%ld pairs on one thread; load average %.1f at the end)\n", SIZE, ROUNDS, pairs, load);
    printf("%-26s %14s %14s %12s %8s   %s\n", "", "without shim", "with shim", "added", "ratio",
           "added, middle half of rounds");
    row("1 thread", d1, s1, lo1, hi1);
    row("8 threads, one device", d8, s8, lo8, hi8);
    char name[64];
    snprintf(name, sizeof(name), "8 threads, %d device%s", ndev, ndev > 1 ? "s" : "");
    row(name, dd, sd, lod, hid);
    row("async, 1 thread", da, sa, loa, hia);
    printf("(8 threads: wall time over one thread's pairs, on %ld cores; on %d devices: thread i on device\n"
           " i %% %d; async: cuMemAllocAsync + cuMemFreeAsync, the stream synchronized every %d pairs, where\n"
           " the shim reads its pool)\n", sysconf(_SC_NPROCESSORS_ONLN), ndev, ndev, SYNC_EVERY);
    double start_plain, start_shim, start_lo, start_hi;
    bool started = compare_starts(path, seconds, max_s, &start_plain, &start_shim, &start_lo, &start_hi);
    if (started) {
        printf("\nshim: a process's start, %s started and waited for, with the job's region at a descriptor;\n"
               "median of %d rounds\n", START_PROGRAM, ROUNDS);
        printf("%-26s %14s %14s %12s %8s   %s\n", "", "without shim", "with shim", "added", "ratio",
               "added, middle half of rounds");
        printf("%-26s %11.1f us %11.1f us %+9.1f us %7.2fx   %+.1f to %+.1f\n", "start and exit", start_plain,
               start_shim, start_shim - start_plain, start_shim / start_plain, start_lo, start_hi);
    }
    bool within = s1 - d1 <= TARGET_ADDED_NS;
    printf("target: at most %.0f ns added per pair on one thread: %+.1f ns, %s\n", TARGET_ADDED_NS, s1 - d1,
           within ? "met" : "MISSED");
    if (errors)
        printf("errors: %ld allocations or frees failed\n", errors);
    return within && !errors && started ? 0 : 1;
}
