/* SPDX-License-Identifier: MIT */
/*
 * shim/ptrmap.h - what each live allocation of this process weighs and on
 * which device, so that a free can take exactly that back.
 *
 * A fixed open-addressed table of (key, size|device) words, lock-free: an
 * insert claims the first empty or deleted slot along the key's probe run
 * with a compare-and-swap, a delete marks the slot deleted.  Slots never go
 * back to empty, so a lookup that meets an empty slot knows the key is not
 * there.  A key lives at most once (the driver never hands out an address
 * twice while it is live), and its free follows its allocation in the
 * program's own order, which is all the ordering the table needs.  Probe
 * runs are bounded.  Two tables: a small one that stays in cache (where
 * nearly every allocation lives: a table as big as the largest job needs,
 * touched at random, costs a cache miss per call), and a large one, untouched
 * until the small one has no room along a key's run.  An allocation that
 * finds room in neither is not remembered (its free then gives nothing back:
 * the count errs high, never low).
 */
#ifndef VRAM_SHIM_PTRMAP_H
#define VRAM_SHIM_PTRMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PTRMAP_EMPTY   0ull
#define PTRMAP_DELETED (~0ull)
#define PTRMAP_PROBES  64

/* What is kept: the device in the top 8 bits, the size below. */
#define PTRMAP_VALUE(size, dev)  (((uint64_t)(dev) << 56) | ((size) & ((1ull << 56) - 1)))
#define PTRMAP_SIZE(v)           ((v) & ((1ull << 56) - 1))
#define PTRMAP_DEV(v)            ((int)((v) >> 56))

/* Keys of the different kinds of handle never meet: the kind goes in the
 * top bits, which neither addresses nor handles use. */
enum {
    PTRMAP_DEVPTR = 0, PTRMAP_ARRAY = 1, PTRMAP_MIPMAP = 2, PTRMAP_HANDLE = 3, PTRMAP_CTX = 4,
    PTRMAP_MAPPING = 5, PTRMAP_MAPSIZE = 6,     /* a cuMemMap's handle and size, by its address */
};
#define PTRMAP_KEY(kind, k)  ((uint64_t)(k) ^ ((uint64_t)(kind) << 59))

typedef struct ptrmap_entry {
    _Atomic uint64_t key;
    _Atomic uint64_t value;
} ptrmap_entry;

typedef struct ptrmap_table {
    ptrmap_entry *e;
    uint64_t mask;                  /* capacity - 1, a power of two */
} ptrmap_table;

typedef struct ptrmap {
    ptrmap_table t[2];              /* small first, then large */
    _Atomic bool large_used;        /* the large one has held an entry */
} ptrmap;

static inline uint64_t ptrmap_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static inline bool ptrmap_table_put(ptrmap_table *m, uint64_t key, uint64_t value)
{
    if (!m->e)
        return false;
    uint64_t i = ptrmap_hash(key);
    for (int n = 0; n < PTRMAP_PROBES; n++, i++) {
        ptrmap_entry *e = &m->e[i & m->mask];
        uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
        if (k != PTRMAP_EMPTY && k != PTRMAP_DELETED)
            continue;
        /* The value goes in first, so that whoever sees the key sees it. */
        if (atomic_compare_exchange_strong_explicit(&e->key, &k, PTRMAP_DELETED - 1,
                                                    memory_order_acquire, memory_order_relaxed)) {
            atomic_store_explicit(&e->value, value, memory_order_relaxed);
            atomic_store_explicit(&e->key, key, memory_order_release);
            return true;
        }
    }
    return false;
}

/* The slot where key lives, or NULL. */
static inline ptrmap_entry *ptrmap_table_entry(ptrmap_table *m, uint64_t key)
{
    if (!m->e)
        return NULL;
    uint64_t i = ptrmap_hash(key);
    for (int n = 0; n < PTRMAP_PROBES; n++, i++) {
        ptrmap_entry *e = &m->e[i & m->mask];
        uint64_t k = atomic_load_explicit(&e->key, memory_order_acquire);
        if (k == key)
            return e;
        if (k == PTRMAP_EMPTY)
            return NULL;
    }
    return NULL;
}

static inline bool ptrmap_table_take(ptrmap_table *m, uint64_t key, uint64_t *value)
{
    ptrmap_entry *e = ptrmap_table_entry(m, key);
    if (!e)
        return false;
    uint64_t k = key;
    *value = atomic_load_explicit(&e->value, memory_order_relaxed);
    /* Only one free of an address can win; a second (a double free, an
     * application bug) finds it gone. */
    return atomic_compare_exchange_strong_explicit(&e->key, &k, PTRMAP_DELETED, memory_order_acq_rel,
                                                   memory_order_relaxed);
}

static inline bool ptrmap_put(ptrmap *m, uint64_t key, uint64_t value)
{
    if (key == PTRMAP_EMPTY || key >= PTRMAP_DELETED - 1)
        return false;
    if (ptrmap_table_put(&m->t[0], key, value))
        return true;
    if (!ptrmap_table_put(&m->t[1], key, value))
        return false;
    if (!atomic_load_explicit(&m->large_used, memory_order_relaxed))
        atomic_store(&m->large_used, true);
    return true;
}

/* Removes key; its value in *value.  False when it is not there. */
static inline bool ptrmap_take(ptrmap *m, uint64_t key, uint64_t *value)
{
    if (key == PTRMAP_EMPTY || key >= PTRMAP_DELETED - 1)
        return false;
    return ptrmap_table_take(&m->t[0], key, value) || ptrmap_table_take(&m->t[1], key, value);
}

/* The value of key's live entry, for its owner to change in place with
 * atomics while it keeps the entry live; NULL when it is not there. */
static inline _Atomic uint64_t *ptrmap_find(ptrmap *m, uint64_t key)
{
    if (key == PTRMAP_EMPTY || key >= PTRMAP_DELETED - 1)
        return NULL;
    ptrmap_entry *e = ptrmap_table_entry(&m->t[0], key);
    e = e ? e : ptrmap_table_entry(&m->t[1], key);
    return e ? &e->value : NULL;
}

/* Deletes every entry for which drop(key, value, arg) is true: a walk of
 * the whole table (and the large one, once it has been used), for when
 * many entries stop meaning anything at once, which is rare. */
static inline void ptrmap_drop(ptrmap *m, bool (*drop)(uint64_t key, uint64_t value, int arg), int arg)
{
    for (int t = 0; t < (atomic_load(&m->large_used) ? 2 : 1); t++)
        for (uint64_t i = 0; m->t[t].e && i <= m->t[t].mask; i++) {
            ptrmap_entry *e = &m->t[t].e[i];
            uint64_t k = atomic_load_explicit(&e->key, memory_order_acquire);
            if (k != PTRMAP_EMPTY && k < PTRMAP_DELETED - 1 &&
                drop(k, atomic_load_explicit(&e->value, memory_order_relaxed), arg))
                atomic_compare_exchange_strong(&e->key, &k, PTRMAP_DELETED);
        }
}

#endif
