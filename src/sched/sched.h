/* SPDX-License-Identifier: MIT */
/*
 * sched/sched.h - what the files of the scheduler module share.
 *
 * ledger.c keeps the books (devices, leases, residents, task classes) and
 * the one queue of requests; policy.c decides, in one admission pass, which
 * waiting requests start now and where; lease.c is the external face of
 * that queue (blocking and async leases); pool.c runs tasks on worker
 * threads through the same queue; collect.c hands outcomes back in order;
 * image.c resamples frames.  Everything a pass reads or writes is guarded by
 * the ledger's one mutex; user callbacks are only ever called without it.
 */
#ifndef VRAM_SCHED_SCHED_H
#define VRAM_SCHED_SCHED_H

#include <pthread.h>
#include <stdbool.h>

#include "core/ctx.h"
#include "monitor/monitor.h"

#define VRAM__CLASS_NAME_MAX 96
#define VRAM__HOLDER_MAX 64
#define VRAM__DEFAULT_WINDOW 256
#define VRAM__NO_END UINT64_MAX     /* a grant whose end nobody can predict */
/* How long a task that has a cheaper rung waits for memory that is not
 * ours (others hold it: none of our grants ending would make the room)
 * before it steps down, even when it may wait for ever. */
#define VRAM__STEP_PATIENCE_MS 1000

/* ---- task classes: what the ledger learns ---- */

typedef struct vram__class {
    char name[VRAM__CLASS_NAME_MAX];
    uint64_t extra_bytes;           /* raised by every out-of-memory's shortfall */
    double mean_ms;                 /* moving mean of durations, 0 unknown */
    uint64_t runs, ooms;
} vram__class;

/* ---- requests: one per lease or task attempt ---- */

enum { REQ_QUEUED, REQ_GRANTED, REQ_DONE };

/* Why a request waits, as Slurm says it (squeue's REASON): set by each
 * admission pass that looks at it. */
enum {
    WAIT_PRIORITY,                  /* a request ahead of it comes first */
    WAIT_RESOURCES,                 /* not enough memory free on any device it may use */
    WAIT_LEASE,                     /* ... and what it misses is held by leases */
    WAIT_DEPENDENCY                 /* waits for a worker of its pool, or an unload */
};

/* Waiting requests are also counted by the size they need at the least,
 * in buckets an eighth of a power of two wide, so that a pass can stop
 * once no device has room for the smallest of them. */
#define VRAM__NBUCKETS (64 * 8)

/* A worker pool's concurrency: its requests start only while it has a free
 * worker, and one waiting for a worker does not hold up the others. */
typedef struct vram__client {
    unsigned slots_free;
} vram__client;

typedef struct vram__req vram__req;

/* Told once, after the pass, with no lock held: r->status says what. */
typedef void (*vram__notify_fn)(vram__req *r);

struct vram__req {
    uint64_t id;                    /* ticket, and the lease id once granted */
    uint64_t seq;                   /* first-come order; a retry keeps its own */
    int priority;
    uint64_t bytes;                 /* estimate on any device */
    uint64_t *device_bytes;         /* optional per-device estimate (owned by
                                       whoever owns the request) */
    unsigned ndevice_bytes;
    int device_pref;                /* VRAM_DEVICE_ANY or an index */
    vram__class *cls;               /* may be NULL */
    uint64_t expected_ms;           /* 0: the class's mean, if any */
    int64_t wait_ms;                /* VRAM_WAIT_FOREVER, or how long it may wait */
    uint64_t deadline_ns;           /* 0: no deadline (yet: a task's clock starts
                                       when memory, not a worker, holds it up) */
    bool cpu_ok;
    bool to_cpu;                    /* waited too long: runs on the CPU */
    bool can_step;                  /* a task with a cheaper rung left: when it
                                       waited out its patience, it steps down
                                       (before the CPU, before the fallback) */
    uint64_t cap_bytes;             /* 0, or the most it may ask for (a retry:
                                       what the attempt that failed had) */
    uint64_t extra_seen;            /* its class's extra when it was granted */
    vram_resident *resident;        /* pinned while granted */
    vram__client *client;           /* NULL: no concurrency limit */
    char holder[VRAM__HOLDER_MAX];
    uint32_t pid;
    uint32_t pgid;                  /* its process group's memory is ours too; 0: none */

    int state;                      /* REQ_* */
    int status;                     /* after notify: 0 granted, or VRAM_E* */
    int device;                     /* granted on (or VRAM_DEVICE_CPU) */
    uint64_t granted_bytes;
    uint64_t start_ns;
    uint64_t end_ns;                /* expected end, VRAM__NO_END unknown */
    bool resident_counted;          /* the grant reloaded an evicted resident */

    vram__notify_fn notify;         /* deferred notification, or NULL */
    pthread_cond_t *waiter;         /* a blocked acquirer, signalled in the pass */
    void *owner;                    /* the task or async caller behind it */

    vram__req *prev, *next;         /* in its priority level, or in the grants */
    vram__req *dl_prev, *dl_next;   /* in the deadline list while waiting */
    vram__req *out_next;            /* in a pass's list of notifications */
    bool external;                  /* a lease request (lease.c), not a task */
    bool adopted;                   /* granted without waiting: it already runs */
    bool is_lease;                  /* external and not a queue's job: counted in
                                       vram__dev.lease_bytes while granted */
    bool clocked;                   /* in the ledger's list of requests whose
                                       wait clock has not started */
    uint8_t reason;                 /* WAIT_*, while queued */
    uint16_t bucket;                /* its size bucket, while queued */
    const char **reason_out;        /* optional: kept pointing at the reason's
                                       name while queued (atomic stores) */
    vram__req *uc_prev, *uc_next;   /* in the list of unclocked requests */
};

/* ---- residents ---- */

enum { RES_LOADED, RES_EVICTING, RES_EVICTED };

struct vram_resident {
    vram_ledger *l;
    char name[VRAM__CLASS_NAME_MAX];
    unsigned device;
    uint64_t bytes;
    vram_unload_fn unload;
    void *user;
    unsigned refs, pins;
    int state;                      /* RES_* */
    uint64_t last_use_ns;
    vram_resident *prev, *next;
};

/* ---- the ledger ---- */

typedef struct vram__dev {
    bool sampled;
    char name[VRAM_NAME_MAX];
    bool lost;                      /* the backend says VRAM_ELOST: capacity 0 */
    uint64_t total, margin;
    uint64_t reserved;              /* driver-reserved, outside used (NVML v2) */
    uint64_t others;                /* used at the last sample, less explained */
    uint64_t explained;             /* ours seen in use at the last sample */
    uint64_t leased;                /* granted requests */
    uint64_t resident;              /* residents loaded or being evicted */
    uint64_t lease_bytes;           /* of leased, what leases outside a queue hold */
    unsigned nleases, nresidents;
    unsigned waiting_pinned;        /* queued requests that asked for this device */
} vram__dev;

typedef struct vram__level {
    int priority;
    vram__req *head, *tail;
} vram__level;

/* A grant as the policy sees it: bytes that come back at an expected end. */
typedef struct vram__span {
    uint64_t end_ns;
    uint64_t bytes;
} vram__span;

/* What a pass decided, acted on once the lock is released. */
typedef struct vram__pass_out {
    vram__req *notify, *notify_tail;  /* granted or expired, to tell in order */
    vram_resident *evict[16];       /* residents to unload, then pass again */
    unsigned nevict;
} vram__pass_out;

struct vram_ledger {
    vram_ctx *ctx;
    vram_monitor *mon;
    unsigned ndev;
    vram__dev *dev;
    unsigned window;
    bool no_backfill;

    pthread_mutex_t lock;
    uint64_t next_id, next_seq;

    vram__level *levels;            /* by priority, highest first */
    unsigned nlevels, levels_cap;
    unsigned waiting;
    unsigned waiting_any;           /* of those, that may use any device */
    unsigned waiting_cpu;           /* of those, bound for the CPU */
    uint32_t bucket_count[VRAM__NBUCKETS];
    unsigned floor_hint;            /* no bucket below it is in use */
    vram__req *uc_head;             /* queued with a wait limit or a cheaper rung,
                                       whose clock has not started yet */
    vram__req *dl_head, *dl_tail;   /* waiting requests with a deadline, soonest first */
    vram__req *grants;              /* every granted request */
    unsigned ngrants;
    /* The waiting external requests by id (lease.c's cancel), open
     * addressing: a cancel costs the same with 100,000 jobs queued. */
    vram__req **wait_index;
    size_t wait_index_cap, wait_index_used;     /* slots; full or tombstoned */
    bool wait_index_lost;           /* one could not be indexed: found by a walk */
    vram_resident *residents;
    unsigned evicting;              /* residents being unloaded right now */
    vram__class **classes;
    unsigned nclasses, classes_cap;
    unsigned scheds;                /* schedulers open on it */

    /* Scratch for the pass, grown under the lock. */
    vram__span *scratch;
    size_t scratch_cap;

    /* The timer thread expires deadlines. */
    pthread_t timer;
    pthread_cond_t timer_wake;
    bool timer_started, stopping;
    uint64_t timer_at_ns;           /* what the timer sleeps until, 0: forever */
};

/* ---- ledger.c ---- */

/* Finds or makes the class called name (NULL for no name). Under the lock. */
vram__class *vram__class_intern(vram_ledger *l, const char *name);

/* Requests: queue one (checked by vram__policy_check first; *id_out, may
 * be NULL, gets its id before anything can grant it), take back one still
 * waiting (true if it was), release a granted one.  Each runs a pass and
 * delivers what it decided. */
int vram__ledger_submit(vram_ledger *l, vram__req *r, uint64_t *id_out);
bool vram__ledger_withdraw(vram_ledger *l, vram__req *r);
/* Takes back every waiting request of a client; returns them (out_next). */
vram__req *vram__ledger_withdraw_client(vram_ledger *l, const vram__client *c);
void vram__ledger_release(vram_ledger *l, vram__req *r, bool learn, bool free_slot);
void vram__ledger_free_slot(vram_ledger *l, vram__client *c);

/* Raises the class's estimates after an out-of-memory of r (granted, not
 * yet released).  Out-of-memory results of attempts granted under the same
 * estimate count once: the class's extra becomes what r saw plus the
 * shortfall, at most r's own bytes again, never less than it was. */
void vram__ledger_oom(vram_ledger *l, const vram__req *r, uint64_t shortfall);

/* Under the lock: queue links, and the grant bookkeeping the pass uses.
 * grant and expire tell the request (a blocked acquirer at once, others
 * through out after the pass); ungrant takes a grant off the books. */
void vram__queue_remove(vram_ledger *l, vram__req *r);
void vram__deadline_insert(vram_ledger *l, vram__req *r);

/* now_ns + wait_ms as a deadline; a wait past what the clock can say
 * (centuries) is UINT64_MAX, a wait without end, never a product that
 * wraps to a deadline already gone. */
static inline uint64_t vram__deadline_after(uint64_t now_ns, uint64_t wait_ms)
{
    return wait_ms > (UINT64_MAX - now_ns) / 1000000ull ? UINT64_MAX : now_ns + wait_ms * 1000000ull;
}
void vram__deadline_remove(vram_ledger *l, vram__req *r);
void vram__grant(vram_ledger *l, vram__req *r, int device, uint64_t bytes, uint64_t now_ns,
                 vram__pass_out *out);
void vram__expire(vram_ledger *l, vram__req *r, int status, vram__pass_out *out);
void vram__ungrant(vram_ledger *l, vram__req *r, bool learn);

/* When r, started at now_ns, should end: from its expected duration or its
 * class's mean; VRAM__NO_END when neither is known. */
uint64_t vram__expected_end(const vram__req *r, uint64_t now_ns);

/* Runs a pass under the lock, then (unlocked) evicts and notifies, again
 * until no eviction is left.  Call with the lock held; returns without it. */
void vram__ledger_settle(vram_ledger *l);

/* The device's room now: capacity - others - leased - resident (>= 0). */
uint64_t vram__dev_room(const vram__dev *d);
uint64_t vram__dev_capacity(const vram__dev *d);

/* The name of a WAIT_* reason: "Priority", "Resources", "Lease", "Dependency". */
const char *vram__reason_name(int reason);

/* Sets r's reason (and its caller's copy). */
void vram__set_reason(vram__req *r, int reason);

/* The lower edge of the smallest size bucket that holds a waiting request
 * (UINT64_MAX when none waits). */
uint64_t vram__waiting_floor(vram_ledger *l);

/* Takes r off the list of unclocked requests (its clock started). */
void vram__unclocked_remove(vram_ledger *l, vram__req *r);

/* A ledger of one device of `capacity` bytes to use and nothing else (no
 * context, monitor or timer), for simulate.c; the caller passes it alone.
 * NULL when out of memory.  Freed with vram__ledger_bare_free (NULL is fine). */
vram_ledger *vram__ledger_bare(uint64_t capacity, unsigned window, bool no_backfill);
void vram__ledger_bare_free(vram_ledger *l);

/* Queues r (under the lock), without a pass: in seq order within its level. */
int vram__queue_insert(vram_ledger *l, vram__req *r);
vram__req *vram__waiting_find(vram_ledger *l, uint64_t id);  /* an external one, or NULL */

/* ---- policy.c ---- */

/* A request's estimate on device d, with what its class learnt; UINT64_MAX
 * when it cannot run there. */
uint64_t vram__need(const vram_ledger *l, const vram__req *r, unsigned d);

/* Refuses, at submit, a request no device could ever take (VRAM_ENOFIT
 * with both numbers) or that names a device there is not (VRAM_ENODEV).
 * Under the lock.  Sets *cpu_only when it fits nowhere but may use the CPU. */
int vram__policy_check(const vram_ledger *l, const vram__req *r, bool *cpu_only);

/* One admission pass over the queue at now_ns (see vram.h for the policy). */
void vram__policy_pass(vram_ledger *l, uint64_t now_ns, vram__pass_out *out);

/* ---- ladder.c ---- */

/* The rule of every ladder: no rung needs more than the one before (strict:
 * a job's text ladder, where budgets shrink and are on every rung or none).
 * Messages number rung i as i + base. */
int vram__ladder_check_cheaper(const vram_ladder *l, bool strict, size_t base);

/* A task's ladder: rung 0 is the task itself (bytes, fn), then its n rungs.
 * Refuses rungs without a callback, of 0 bytes or larger than the one
 * before, and more than VRAM_LADDER_MAX_RUNGS of them. */
int vram__ladder_from_task(uint64_t bytes, vram_task_fn fn, const vram_rung *rungs, size_t n,
                           vram_ladder **out);

/* ---- lease.c ---- */

void vram__lease_info_of(const vram__req *r, uint64_t now_ns, vram_lease_info *out);

/* ---- image.c ---- */

bool vram__image_valid(const vram_image *im);

#endif /* VRAM_SCHED_SCHED_H */
