/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/test_count.c - the shim's counting parts on their own: the
 * allocation table and the region's per-device count, hammered by threads
 * (the ThreadSanitizer run takes this file), and the runner's side
 * (runner/enforce.c) giving back a dead process's bytes.
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "runner/runner.h"
#include "shim/ptrmap.h"
#include "shim/region.h"

#define THREADS 8
#define ROUNDS 20000

static ptrmap map;
static vram_shim_region *region;

/* A small table of 64 and a large one of 1 << 16, as the shim has (in
 * other sizes): the small one fills, the rest go to the large. */
static bool map_open(void)
{
    ptrmap_entry *m = mmap(NULL, (64 + (1u << 16)) * sizeof(ptrmap_entry), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    map.t[0] = (ptrmap_table){ m, 63 };
    map.t[1] = (ptrmap_table){ m + 64, (1u << 16) - 1 };
    return true;
}

static void map_close(void)
{
    munmap(map.t[0].e, (64 + (1u << 16)) * sizeof(ptrmap_entry));
}

TEST(table_put_take)
{
    CHECK(map_open());
    CHECK(ptrmap_put(&map, 0x7000, PTRMAP_VALUE(4096, 3)));
    uint64_t v = 0;
    CHECK(!ptrmap_take(&map, 0x7001, &v));
    CHECK(ptrmap_take(&map, 0x7000, &v));
    CHECK_EQ_U64(PTRMAP_SIZE(v), 4096);
    CHECK_EQ(PTRMAP_DEV(v), 3);
    CHECK(!ptrmap_take(&map, 0x7000, &v));     /* a double free finds nothing */
    CHECK(!ptrmap_put(&map, 0, 1));            /* the empty key is refused */
    /* Different kinds of handle with the same bits do not meet. */
    CHECK(ptrmap_put(&map, PTRMAP_KEY(PTRMAP_ARRAY, 0x9000), 1));
    CHECK(!ptrmap_take(&map, PTRMAP_KEY(PTRMAP_DEVPTR, 0x9000), &v));
    CHECK(ptrmap_take(&map, PTRMAP_KEY(PTRMAP_ARRAY, 0x9000), &v));
    /* More live keys than the small table holds: all kept, all found. */
    for (uint64_t k = 1; k <= 1000; k++)
        CHECK(ptrmap_put(&map, k << 12, PTRMAP_VALUE(k, 0)));
    for (uint64_t k = 1; k <= 1000; k++) {
        CHECK(ptrmap_take(&map, k << 12, &v));
        CHECK_EQ_U64(PTRMAP_SIZE(v), k);
    }
    map_close();
}

/* Each thread allocates (charges the device, records the pointer) and
 * frees (takes it back) as the shim's hooks do, with budget checks. */
static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    long bad = 0;
    for (uint64_t i = 0; i < ROUNDS; i++) {
        uint64_t key = ((id + 1) << 32) | ((i + 1) << 9);
        uint64_t n = 1 << 20;
        vram_shim_dev *d = &region->dev[id % 2];
        uint64_t now = atomic_fetch_add_explicit(&d->used, n, memory_order_relaxed) + n;
        if (now > region->dev[0].budget) {
            atomic_fetch_sub_explicit(&d->used, n, memory_order_relaxed);
            continue;
        }
        vram_shim_raise(&d->peak, now);
        atomic_fetch_add_explicit(&region->slot[id].sub[i % VRAM_SHIM_SUBS].bytes[id % 2], n,
                                  memory_order_relaxed);
        if (!ptrmap_put(&map, key, PTRMAP_VALUE(n, id % 2)))
            bad++;
        uint64_t v;
        if (!ptrmap_take(&map, key, &v) || PTRMAP_SIZE(v) != n)
            bad++;
        /* Given back on another counter than it was taken on, as a free
         * on another thread is: only the slot's sum must come out right. */
        atomic_fetch_sub_explicit(&region->slot[id].sub[(i + 1) % VRAM_SHIM_SUBS].bytes[id % 2], n,
                                  memory_order_relaxed);
        atomic_fetch_sub_explicit(&d->used, n, memory_order_relaxed);
    }
    return (void *)bad;
}

TEST(threads_count_exactly)
{
    CHECK(map_open());
    region = mmap(NULL, sizeof(*region), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(region != MAP_FAILED);
    vram_shim_region_init(region, VRAM_SHIM_HARD, 4ull << 20);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        CHECK(!pthread_create(&t[i], NULL, worker, (void *)i));
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ_U64(atomic_load(&region->dev[0].used), 0);
    CHECK_EQ_U64(atomic_load(&region->dev[1].used), 0);
    CHECK(atomic_load(&region->dev[0].peak) <= 4ull << 20);
    CHECK(atomic_load(&region->dev[0].peak) >= 1ull << 20);
    munmap(region, sizeof(*region));
    map_close();
}

/* The job's peak is the most it held at once over its devices, not the
 * sum of each device's peak. */
TEST(job_peak_is_peak_of_the_sum)
{
    region = mmap(NULL, sizeof(*region), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(region != MAP_FAILED);
    vram_shim_region_init(region, VRAM_SHIM_HARD, 8ull << 30);
    _Atomic uint64_t seen = 0, seen2 = 0;
    uint64_t g = 1ull << 30;
#define TO(d, v, s) (atomic_store(&region->dev[d].used, v), vram_shim_note_peak(region, s, d, v))
    TO(0, g, &seen);                   /* one device: its peak is the job's */
    CHECK_EQ_U64(vram_shim_region_peak(region), g);
    CHECK_EQ_U64(atomic_load(&region->job.peak_all), 0);
    atomic_store(&region->dev[0].used, 0);
    TO(1, 3 * g, &seen);                /* 1 GiB then (freed) 3 GiB elsewhere: 3 GiB, not 4 */
    CHECK_EQ_U64(vram_shim_region_peak(region), 3 * g);
    TO(0, 2 * g, &seen2);               /* another process, 2 GiB beside the 3: 5 */
    CHECK_EQ_U64(vram_shim_region_peak(region), 5 * g);
    CHECK_EQ_U64(atomic_load(&region->dev[0].peak), 2 * g);
    CHECK_EQ_U64(atomic_load(&region->dev[1].peak), 3 * g);
    CHECK_EQ_U64(atomic_load(&region->job.devs), 3);
    atomic_store(&region->dev[1].used, 0);
    TO(0, 4 * g, &seen2);               /* 4 on one device after the 3 went: still 5 */
    CHECK_EQ_U64(vram_shim_region_peak(region), 5 * g);
#undef TO
    munmap(region, sizeof(*region));
}

TEST(runner_gives_back_a_dead_process)
{
    vram__enforce e;
    memset(&e, 0, sizeof(e));
    /* Without the shim on disk, the default is to run unenforced. */
    setenv("VRAM_SHIM_LIBRARY", "/nonexistent/libvram_shim.so", 1);
    CHECK_ERR(vram__enforce_open(&e, "hard", 1 << 30), VRAM_ENOENT);
    CHECK_ERR(vram__enforce_open(&e, "strict", 1 << 30), VRAM_EINVAL);
    CHECK_OK(vram__enforce_open(&e, "off", 1 << 30));
    CHECK(!vram__enforce_on(&e));
    /* Any readable file stands in for the shim here.  (Unasked, a plain
     * build enforces hard and a sanitizer build not at all.) */
    setenv("VRAM_SHIM_LIBRARY", "/proc/self/exe", 1);
    CHECK_OK(vram__enforce_open(&e, NULL, 1 << 30));
    CHECK_STR_EQ(vram__enforce_mode_name(&e), vram__enforce_on(&e) ? "hard" : "off");
    vram__enforce_close(&e);
    CHECK_OK(vram__enforce_open(&e, "soft", 1 << 30));
    CHECK_STR_EQ(vram__enforce_mode_name(&e), "soft");
    vram__enforce_close(&e);
    CHECK_OK(vram__enforce_open(&e, "hard", 1 << 30));
    CHECK(vram__enforce_on(&e));
    /* A child claims a slot and takes 256 MiB, then dies holding them. */
    pid_t pid = fork();
    if (pid == 0) {
        int slot = vram_shim_slot_claim(e.region, (int32_t)getpid(), 0);
        atomic_fetch_add(&e.region->dev[0].used, 256u << 20);
        atomic_fetch_add(&e.region->slot[slot].sub[3].bytes[0], 256u << 20);
        raise(SIGKILL);
        _exit(1);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    /* Our own slot, alive, keeps its bytes. */
    int mine = vram_shim_slot_claim(e.region, (int32_t)getpid(), 0);
    atomic_fetch_add(&e.region->dev[0].used, 1u << 20);
    atomic_fetch_add(&e.region->slot[mine].sub[0].bytes[0], 2u << 20);
    atomic_fetch_sub(&e.region->slot[mine].sub[5].bytes[0], 1u << 20);
    _Atomic uint64_t last_sum = 0;   /* a compound literal of atomic type is not C11 */
    vram_shim_note_peak(e.region, &last_sum, 0, 257u << 20);
    vram__enforce_count c;
    vram__enforce_read(&e, &c);
    CHECK_EQ_U64(c.used_bytes, 1u << 20);
    /* The job held 257 MiB at most, on device 0; then 64 MiB on device 1
     * beside the 1 left: its peak stays 257 MiB (the devices' peaks sum to
     * 321). */
    atomic_store(&e.region->dev[1].used, 64u << 20);
    atomic_store(&last_sum, 0);
    vram_shim_note_peak(e.region, &last_sum, 1, 64u << 20);
    vram__enforce_read(&e, &c);
    CHECK_EQ_U64(c.peak_bytes, 257u << 20);
    CHECK_EQ_U64(c.used_bytes, 65u << 20);
    atomic_store(&e.region->dev[1].used, 0);
    CHECK_EQ_U64(vram_shim_slot_bytes(e.region, mine, 0), 1u << 20);
    vram__enforce_close(&e);
    unsetenv("VRAM_SHIM_LIBRARY");
}
