/* SPDX-License-Identifier: MIT */
/*
 * shim/region.h - the memory that a job's processes and its runner share:
 * the budget, the mode, and the live device bytes of every process.
 *
 * The runner creates it (memfd, owner-only, never a path anyone else can
 * open), fills the header and hands the descriptor down in VRAM_SHIM_FD;
 * every process of the job maps it and counts into it with atomics only.
 * Per device (the job's CUDA ordinals, as its CUDA_VISIBLE_DEVICES numbers
 * them): the job's budget there, its live bytes, its peak and its peak
 * overage (soft mode), each device on its own cache line, so that devices
 * never share a line on the hot path.  A device whose budget is 0 is not
 * the job's: hard mode refuses every allocation there.  card_free is what
 * the card had free when the runner started the job (0: unknown), from
 * which the shim measures a first context without NVML.  The job's peak is
 * the most it held at once over all its devices, not the sum of each
 * device's peak (which it may never have held at once): while the job has
 * used one device, that device's peak is the job's; once it has used two,
 * an allocation that takes its device more than a step (1/256 of its
 * budget, at least 1 MiB) above where the sum was last taken there (or
 * the lowest the device went since) reads the other devices' live bytes
 * and raises job.peak_all to the sum: churn below that step reads only its
 * own line, and the job's peak is low by less than a step per device.
 * Per process: a slot with its pid and its bytes per device,
 * so that the runner can hand back the bytes of a process that died holding
 * them (kill -9).  A slot's bytes are split over VRAM_SHIM_SUBS counters,
 * each on lines of its own, that the process's threads spread over (a
 * thread may free what another counted: only their sum, modulo 2^64, is the
 * process's bytes).  Layout and helpers here are static inline: the shim and
 * libvram each compile them, and neither links the other.
 */
#ifndef VRAM_SHIM_REGION_H
#define VRAM_SHIM_REGION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define VRAM_SHIM_MAGIC    0x314d4948534d4156ull   /* "VAMSHIM1" */
#define VRAM_SHIM_VERSION  3u
#define VRAM_SHIM_DEVICES  16
#define VRAM_SHIM_SLOTS    256
#define VRAM_SHIM_SUBS     8

/* How an allocation past the budget is answered. */
#define VRAM_SHIM_MODE_LIST(X)                                                 \
    X(OFF,  0, "off")     /* count only, refuse nothing, report the card */    \
    X(HARD, 1, "hard")    /* refuse with CUDA_ERROR_OUT_OF_MEMORY */           \
    X(SOFT, 2, "soft")    /* let it through while the card has room; count the overage */

enum {
#define X(id, v, name) VRAM_SHIM_##id = v,
    VRAM_SHIM_MODE_LIST(X)
#undef X
};

/* Environment the runner sets for the job. */
#define VRAM_SHIM_ENV_FD     "VRAM_SHIM_FD"        /* the region's descriptor */
#define VRAM_SHIM_ENV_MODE   "VRAM_ENFORCE"        /* hard|soft|off without a region */
#define VRAM_SHIM_ENV_BUDGET "VRAM_BUDGET_BYTES"   /* the budget without a region */

typedef struct vram_shim_dev {
    _Atomic uint64_t used;          /* live bytes of the job on this device */
    _Atomic uint64_t peak;
    _Atomic uint64_t over_peak;     /* most bytes past the budget at once (soft) */
    _Atomic uint64_t ctx_bytes;     /* of used: contexts and modules */
    _Atomic uint64_t refused;       /* allocations answered out-of-memory */
    uint64_t budget;                /* bytes the job may hold here; 0: none */
    _Atomic uint64_t card_free;     /* the card's free bytes at the job's start; 0: unknown */
    _Atomic uint64_t sum_mark;      /* `used` when the job's sum was last taken here, or lower since */
} __attribute__((aligned(64))) vram_shim_dev;

typedef struct vram_shim_sub {
    _Atomic uint64_t bytes[VRAM_SHIM_DEVICES];
} __attribute__((aligned(64))) vram_shim_sub;

typedef struct vram_shim_slot {
    _Atomic int32_t pid;            /* 0: free */
    uint32_t pad;
    _Atomic uint64_t start_ticks;   /* the process's start time, against pid reuse */
    vram_shim_sub sub[VRAM_SHIM_SUBS];
} __attribute__((aligned(64))) vram_shim_slot;

typedef struct vram_shim_region {
    uint64_t magic;
    uint32_t version;
    uint32_t size;                  /* sizeof(vram_shim_region) */
    uint32_t mode;
    uint32_t pad;
    uint64_t pad1;
    _Atomic uint32_t attached;      /* processes that ever attached */
    _Atomic uint32_t slots_full;    /* processes that found no slot (counted in devices only) */
    _Atomic uint32_t cuda_seen;     /* some process of the job reached the driver */
    char pad2[20];
    struct {
        _Atomic uint64_t devs;      /* bit d: the job has charged device d */
        _Atomic uint64_t peak_all;  /* most live bytes over all devices at once, once it used two */
    } __attribute__((aligned(64))) job;
    vram_shim_dev dev[VRAM_SHIM_DEVICES];
    vram_shim_slot slot[VRAM_SHIM_SLOTS];
} vram_shim_region;

/* Every device gets `budget`; vram__enforce_budget changes one. */
static inline void vram_shim_region_init(vram_shim_region *r, uint32_t mode, uint64_t budget)
{
    r->magic = VRAM_SHIM_MAGIC;
    r->version = VRAM_SHIM_VERSION;
    r->size = (uint32_t)sizeof(*r);
    r->mode = mode;
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++)
        r->dev[d].budget = budget;
}

static inline bool vram_shim_region_valid(const vram_shim_region *r)
{
    return r->magic == VRAM_SHIM_MAGIC && r->version == VRAM_SHIM_VERSION &&
           r->size == sizeof(*r) && r->mode <= VRAM_SHIM_SOFT;
}

/* Raises *peak to at least v. */
static inline void vram_shim_raise(_Atomic uint64_t *peak, uint64_t v)
{
    uint64_t p = atomic_load_explicit(peak, memory_order_relaxed);
    while (v > p && !atomic_compare_exchange_weak_explicit(peak, &p, v, memory_order_relaxed,
                                                           memory_order_relaxed))
        ;
}

/* Device d of the job has just reached `now` live bytes (added before this
 * call): raises its peak, and the job's peak over all devices once it has
 * used more than one.  `seen` is the caller's own note of the devices it
 * has marked in the region (each process marks each device once).  Of two
 * devices' first charges at once, the later mark sees the other's bytes. */
static inline void vram_shim_note_peak(vram_shim_region *r, _Atomic uint64_t *seen, int d, uint64_t now)
{
    vram_shim_dev *dv = &r->dev[d];
    vram_shim_raise(&dv->peak, now);
    uint64_t bit = 1ull << d, devs;
    if (__builtin_expect(!(atomic_load_explicit(seen, memory_order_relaxed) & bit), 0)) {
        atomic_fetch_or(seen, bit);
        devs = atomic_fetch_or(&r->job.devs, bit) | bit;
    } else {
        devs = atomic_load_explicit(&r->job.devs, memory_order_acquire);
    }
    if (__builtin_expect(!(devs & (devs - 1)), 1))
        return;                     /* one device: its peak is the job's */
    uint64_t step = dv->budget >> 8 > (1u << 20) ? dv->budget >> 8 : 1u << 20;
    if (__builtin_expect(now <= atomic_load_explicit(&dv->sum_mark, memory_order_relaxed) + step, 1))
        return;
    atomic_store_explicit(&dv->sum_mark, now, memory_order_relaxed);
    uint64_t all = now;
    for (int k = 0; k < VRAM_SHIM_DEVICES; k++)
        if (k != d && (devs >> k & 1))
            all += atomic_load_explicit(&r->dev[k].used, memory_order_relaxed);
    vram_shim_raise(&r->job.peak_all, all);
}

/* Device d of the job went down to `now` live bytes. */
static inline void vram_shim_note_down(vram_shim_region *r, int d, uint64_t now)
{
    if (now < atomic_load_explicit(&r->dev[d].sum_mark, memory_order_relaxed))
        atomic_store_explicit(&r->dev[d].sum_mark, now, memory_order_relaxed);
}

/* The job's peak over all its devices at once. */
static inline uint64_t vram_shim_region_peak(vram_shim_region *r)
{
    uint64_t p = atomic_load(&r->job.peak_all);
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++) {
        uint64_t v = atomic_load(&r->dev[d].peak);
        p = v > p ? v : p;
    }
    return p;
}

/* Takes a free slot for pid; -1 when all are taken. */
static inline int vram_shim_slot_claim(vram_shim_region *r, int32_t pid, uint64_t start_ticks)
{
    for (int i = 0; i < VRAM_SHIM_SLOTS; i++) {
        int32_t zero = 0;
        if (atomic_load_explicit(&r->slot[i].pid, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&r->slot[i].pid, &zero, pid)) {
            atomic_store(&r->slot[i].start_ticks, start_ticks);
            return i;
        }
    }
    atomic_fetch_add(&r->slots_full, 1);
    return -1;
}

/* Takes slot i's bytes on device d out of it (they sum modulo 2^64). */
static inline uint64_t vram_shim_slot_take(vram_shim_region *r, int i, int d)
{
    uint64_t b = 0;
    for (int k = 0; k < VRAM_SHIM_SUBS; k++)
        b += atomic_exchange(&r->slot[i].sub[k].bytes[d], 0);
    return b;
}

/* Slot i's bytes on device d now. */
static inline uint64_t vram_shim_slot_bytes(vram_shim_region *r, int i, int d)
{
    uint64_t b = 0;
    for (int k = 0; k < VRAM_SHIM_SUBS; k++)
        b += atomic_load(&r->slot[i].sub[k].bytes[d]);
    return b;
}

/* Hands a dead process's bytes back to the job's count and frees its slot.
 * Only the runner calls it, and only for a pid it knows is gone. */
static inline uint64_t vram_shim_slot_reclaim(vram_shim_region *r, int i)
{
    uint64_t total = 0;
    for (int d = 0; d < VRAM_SHIM_DEVICES; d++) {
        uint64_t b = vram_shim_slot_take(r, i, d);
        if (b) {
            atomic_fetch_sub(&r->dev[d].used, b);
            total += b;
        }
    }
    atomic_store(&r->slot[i].start_ticks, 0);
    atomic_store(&r->slot[i].pid, 0);
    return total;
}

#endif
