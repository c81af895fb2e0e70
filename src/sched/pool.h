/* SPDX-License-Identifier: MIT */
/*
 * sched/pool.h - the worker pool's insides, shared by pool.c (running
 * tasks) and collect.c (handing outcomes back in order).
 */
#ifndef VRAM_SCHED_POOL_H
#define VRAM_SCHED_POOL_H

#include "sched/sched.h"

#define POOL_MAX_HOOKS 8

/* Indices into counters, in the order of VRAM_SCHED_COUNTERS. */
enum {
#define POOL_COUNTER_ENUM(name, text) C_##name,
    VRAM_SCHED_COUNTERS(POOL_COUNTER_ENUM)
#undef POOL_COUNTER_ENUM
    C_COUNT
};

typedef struct task {
    vram__req req;                  /* its current attempt's request */
    uint64_t id;
    vram_task_fn fallback;
    vram_ladder *ladder;            /* rung 0: the task's own callback and bytes */
    unsigned nrungs;                /* rungs after rung 0 */
    vram__class *cls[VRAM_LADDER_MAX_RUNGS + 1];  /* what is learnt, per rung */
    uint64_t *device_bytes;
    void *user;
    void (*free_result)(void *result);
    unsigned rung;                  /* 0: its own callback; k: ladder rung k */
    unsigned attempts, ooms;
    bool holds_slot;                /* its request took a worker slot */
    bool on_worker;                 /* a worker has it (counted as running) */
    uint64_t submit_ns;
    bool ended;
    vram_outcome out;
    struct task *ready_next;
} task;

typedef struct hook {
    vram_cleanup_fn fn;
    void *user;
} hook;

struct vram_sched {
    vram_ledger *l;
    vram__client client;            /* guarded by the ledger's lock */
    unsigned nworkers;
    pthread_t *threads;
    unsigned nthreads;

    pthread_mutex_t lock;           /* everything below */
    pthread_cond_t work;            /* a task is ready, or stop */
    pthread_cond_t ended_cond;      /* a task ended, or shutdown */
    task *ready_head, *ready_tail;
    task **tasks;                   /* tasks[id - base], NULL once collected */
    uint64_t base, submitted, collected, ended;
    uint64_t running;               /* tasks a worker holds, until they end or requeue */
    size_t cap;
    bool shut, cancel, stopping;
    uint64_t counters[C_COUNT];     /* C_*; queued and running are worked out */

    pthread_mutex_t submit_lock;    /* ids in submission order */
    pthread_mutex_t collect_lock;   /* one collector at a time */
    pthread_mutex_t progress_lock;  /* the progress callback, one at a time */
    vram_progress_fn progress;
    void *progress_user;

    hook hooks[POOL_MAX_HOOKS];
    unsigned nhooks;                /* atomic: hooks may be added while running */

    bool have_ref;                  /* the first image, what others must match */
    uint32_t ref_width, ref_height, ref_channels;
};

/* The task with this id, under the pool's lock; NULL once collected. */
task *vram__pool_task(vram_sched *s, uint64_t id);

/* Frees a task (its result is the caller's by then). */
void vram__pool_task_free(task *t);

/* Adds to a counter, under the pool's lock. */
void vram__pool_count(vram_sched *s, int counter, uint64_t n);

#endif /* VRAM_SCHED_POOL_H */
