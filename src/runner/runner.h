/* SPDX-License-Identifier: MIT */
/*
 * runner/runner.h - what the runner's files share.
 */
#ifndef VRAM_RUNNER_RUNNER_H
#define VRAM_RUNNER_RUNNER_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/core.h"
#include "wire/link.h"

/* ---- a job's process ---- */

#define VRAM__TAIL_BYTES 65536

/* The buffers come last and are counted (tail_len, held_len), never read
 * past their counts: vram__child_reset zeroes what is before them, not
 * their 68 KiB, which was the largest write of a job's start. */
typedef struct vram__child {
    pid_t pid;                      /* also the id of its process group */
    int err_fd;                     /* its stderr, -1 once closed or not captured */
    int pid_fd;                     /* a pidfd that polls readable at its end, or -1 */
    size_t tail_len;
    size_t held_len;
    bool exited;
    int status;                     /* as waitpid gave it */
    char tail[VRAM__TAIL_BYTES];    /* the last of what it wrote on stderr */
    char held[4096];                /* a line begun but not ended, passed on once it is */
} vram__child;

/* No child yet: nothing to wait for or close (its descriptors -1). */
void vram__child_reset(vram__child *c);

/* Starts argv[0] (searched on PATH) in a new process group with envp (NULL:
 * ours).  VRAM_ENOENT / VRAM_EPERM when it cannot be executed. */
int vram__child_start(char *const argv[], char *const envp[], bool capture_stderr, vram__child *c);

/* Waits up to timeout_ms for stderr output, passes it on and keeps its tail.
 * Returns 1 once stderr is closed. */
int vram__child_pump(vram__child *c, int timeout_ms);

/* Waits up to timeout_ms for stderr output or the child's end, whichever
 * comes first, passing output on as vram__child_pump does.  Returns true
 * once the child has exited (reaped, status kept).  The end wakes it at
 * once through a pidfd; on a kernel without pidfd_open (before 5.3) only
 * stderr's end or the timeout does. */
bool vram__child_wait(vram__child *c, int timeout_ms);

/* Reaps the child (and orphans re-parented to us) without blocking. */
bool vram__child_exited(vram__child *c);

/* True while any process of the child's group is alive. */
bool vram__child_group_alive(const vram__child *c);

void vram__child_signal(const vram__child *c, int sig);
void vram__child_close(vram__child *c);

/* Its exit status, or 128 + the signal that killed it. */
int vram__child_exit_code(const vram__child *c);

/* ---- every process of a job (contain.c) ---- */

/* Finds this process's cgroup, once; call before forking a job. */
void vram__contain_prepare(void);
/* In the forked command, before exec: into a cgroup of its own when the
 * machine allows (async-signal-safe). */
void vram__contain_enter(void);
/* Makes the cgroup the next command starts in: its folder's fd, for
 * vram__fork_clean_into, or -1 where there is none to make (closed by the
 * caller once the command started). */
int vram__contain_make(void);
/* In the parent, once the command `leader` runs: when it started, and
 * whether it was cloned into the cgroup vram__contain_make made. */
void vram__contain_started(pid_t leader, bool in_made);
/* The GPU memory every process of the job holds, over every device. */
int vram__contain_usage(vram_ctx *ctx, pid_t leader, uint64_t *bytes_out);
/* The same, device by device: per_dev[i] for device i, of the first cap;
 * *ndev_out is how many devices there are. */
int vram__contain_usage_by_device(vram_ctx *ctx, pid_t leader, uint64_t *per_dev, unsigned cap,
                                  unsigned *ndev_out);
/* Whether any process of the job whose command is `leader` lives. */
bool vram__contain_alive(pid_t leader);
/* Sends sig to every process of the job; returns how many took it. */
size_t vram__contain_signal(pid_t leader, int sig);
/* Removes the job's cgroup once it is empty. */
void vram__contain_end(pid_t leader);
/* "cgroup" or "process tree": how the job is held. */
const char *vram__contain_kind(pid_t leader);

/* ---- a job's command with its {key} values (shellarg.c) ---- */

/* argv (NULL-terminated) with every {key} given its value from kv: pasted
 * into plain words; for a shell's script (sh -c SCRIPT) passed as words
 * after it and named "${N}" in it, never pasted into the script.  *out is
 * NULL-terminated, each word and the array malloc'ed.  display (cap bytes)
 * gets the command as a person reads it, values in place. */
int vram__argv_expand(char *const *argv, const vram_kv *kv, size_t nkv, char ***out, char *display, size_t cap);

/* ---- a job's memory over time, peaks kept ---- */

#define VRAM__TIMELINE_POINTS 2048

/* Its points come last, counted by n: vram__timeline_reset leaves them. */
typedef struct vram__timeline {
    size_t n;
    size_t stride;                  /* samples per point (doubles when full) */
    size_t pending;                 /* samples gathered toward the next point */
    uint64_t pending_t, pending_bytes;
    uint64_t peak;
    vram_point pts[VRAM__TIMELINE_POINTS];
} vram__timeline;

/* Empty, one sample a point. */
void vram__timeline_reset(vram__timeline *tl);

/* Adds a sample; when the timeline is full, halves its resolution keeping
 * the larger of each pair, so the peak is never lost. */
void vram__timeline_add(vram__timeline *tl, uint64_t t_ms, uint64_t bytes);
void vram__timeline_flush(vram__timeline *tl);

/* Calls visit for each run matching `where` (an SQL WHERE clause with at
 * most one '?' bound to arg), newest first, at most limit (0: 50).  The
 * record's strings live only during the call.  A non-zero return from
 * visit stops and is returned. */
typedef int (*vram__history_visit)(void *user, const vram_run_record *r);
int vram__history_each(vram_history *h, const char *where, const char *arg, unsigned limit,
                       vram__history_visit visit, void *user);

/* The stored timeline of run id (malloc'd; free with free). */
int vram__history_timeline(vram_history *h, int64_t id, vram_point **out, size_t *n);

/* Caps the database's size in pages (SQLite's max_page_count) so that tests
 * can make the disk "full" without a full disk. */
int vram__history_limit_pages(vram_history *h, unsigned pages);

/* The CUDA context's size as measured on a device for a program (key: the
 * device's UUID, or name, and the profile: see run.c), and where it was
 * measured ("shim": exact, taken around the context's creation; "nvml": the
 * job's first usage seen, an upper bound).  VRAM_ENOENT when never. */
int vram__history_context(vram_history *h, const char *key, uint64_t *bytes, char *source, size_t cap);
/* Keeps a measurement: the shim's replaces what was known; an upper bound
 * lowers an upper bound only, and never replaces the shim's. */
int vram__history_context_learn(vram_history *h, const char *key, uint64_t bytes, const char *source);

/* ---- {args}: the plan's settings as the pipeline's flags (args.c) ---- */

/* Whether the command (NULL-terminated) holds {args}. */
bool vram__args_used(char *const *argv);
/* Refuses {args} without a profile, or where it is not a word of its own
 * (or in the script of sh -c). */
int vram__args_check(char *const *argv, const vram_profile *profile);
/* argv with {args} as the plan's words ([args]), each an argv word of its
 * own, or *out NULL when argv has no {args}.  Free with vram__args_free. */
int vram__args_splice(char *const *argv, const vram_plan *plan, char ***out);
void vram__args_free(char **argv);

/* ---- admission: this process's ledger, vramd's leases, or vramd's job ---- */

typedef struct vram__admitter {
    vram_ctx *ctx;
    vram_ledger *ledger;            /* when no daemon answers */
    vram__link link;                /* when one does (link.daemon set) */
    uint64_t job;                   /* the daemon's job this run looks after; 0: none */
    unsigned attempts;
    bool claimed;                   /* the job is claimed: claim is its first grant */
    vram__grant claim;
} vram__admitter;

typedef struct vram__lease_ask {
    uint64_t bytes;
    int device;                     /* -1: any */
    int64_t wait_ms;                /* -1: forever */
    const char *holder;
    const char *task_class;
    bool (*interrupted)(void);      /* checked while waiting */
    void (*waiting)(void *user);    /* called once when it has to wait */
    void *user;
} vram__lease_ask;

typedef struct vram__lease_grant {
    uint64_t lease;
    int device;
    uint64_t bytes;
} vram__lease_grant;

/* Chooses the way: daemon_job > 0 is the daemon's job (its socket from the
 * "socket" option, tried for a while); else vramd when one answers, else a
 * ledger of this process's own. */
int vram__admit_open(vram__admitter *ad, vram_ctx *ctx, uint64_t daemon_job);
void vram__admit_close(vram__admitter *ad);
/* A daemon job ended with a next one for this runner: its connection is
 * kept for that job (vram__link_keep). */
void vram__admit_keep(vram__admitter *ad);
/* A daemon job's runner takes its job: the job's record (free with
 * vram__record_free) and its first grant, which the first vram__admit then
 * hands out without asking again. */
int vram__admit_claim(vram__admitter *ad, vram__record *record, vram__lease_grant *out);
const char *vram__admit_where(const vram__admitter *ad);   /* for the user */
int vram__admit(vram__admitter *ad, const vram__lease_ask *ask, vram__lease_grant *out);
void vram__admit_owner(vram__admitter *ad, uint64_t lease, uint32_t pid, uint32_t pgid);
void vram__admit_release(vram__admitter *ad, uint64_t lease);
void vram__admit_progress(vram__admitter *ad, double progress);
/* A daemon job's process group, told again to a vramd that did not hear it. */
void vram__admit_owner_again(vram__admitter *ad);
void vram__admit_usage(vram__admitter *ad, uint64_t used, uint64_t over);
/* ran: whether the job's command ever started (a job that never did goes
 * back to the queue when vramd cannot be told, rather than failing). */
void vram__admit_ended(vram__admitter *ad, int exit_status, const char *outcome, uint64_t peak, bool ran,
                       vram_job_next *next);

/* ---- enforcement: the shim in the job, and its count (enforce.c) ---- */

struct vram_shim_region;

typedef struct vram__enforce {
    int fd;                         /* the region's memfd, -1 when not enforcing */
    struct vram_shim_region *region;
    int mode;                       /* VRAM_SHIM_HARD or VRAM_SHIM_SOFT */
    char library[4096];             /* the shim's path */
} vram__enforce;

#define VRAM__ENFORCE_DEVICES 16     /* = VRAM_SHIM_DEVICES */

typedef struct vram__enforce_count {
    uint64_t used_bytes;            /* the job's live device bytes now, all devices */
    uint64_t peak_bytes;            /* the most it held at once over all devices */
    uint64_t over_bytes;            /* the most it went past the budget (soft) */
    uint64_t refused;               /* allocations answered out-of-memory */
    unsigned processes;             /* that attached, ever */
    bool cuda_seen;                 /* some process reached the driver: the count is the job's */
    uint64_t dev_used[VRAM__ENFORCE_DEVICES];       /* per device (the job's CUDA ordinals) */
    uint64_t dev_refused[VRAM__ENFORCE_DEVICES];
    uint64_t ctx_bytes;             /* of used: the largest context (and modules) the
                                       shim measured a process's first context take */
} vram__enforce_count;

/* Where libvram_shim.so is: VRAM_SHIM_LIBRARY, else beside libvram (or the
 * program) or in its vram/ folder, else where make install put it
 * (LIBDIR/vram).  VRAM_ENOENT when nowhere. */
int vram__enforce_find_shim(char *buf, size_t cap);

/* "hard", "soft" or "off" into a VRAM_SHIM_* mode; VRAM_EINVAL otherwise. */
int vram__enforce_mode(const char *text, int *mode);

/* Makes the region for one attempt with budget_bytes per device.  mode NULL
 * or "": hard when the shim is found (and this is not a sanitizer build,
 * whose runtime must come before the shim in every job), else not
 * enforcing (not an error);
 * "off": not enforcing; "hard"/"soft" without the shim: VRAM_ENOENT. */
int vram__enforce_open(vram__enforce *e, const char *mode, uint64_t budget_bytes);
void vram__enforce_close(vram__enforce *e);
/* Sets one device's budget (the job's CUDA ordinal dev; 0: the job may not
 * allocate there), after vram__enforce_open gave every device the same. */
int vram__enforce_budget(vram__enforce *e, int dev, uint64_t bytes);
/* What card dev had free when the job starts, from which the shim measures
 * the job's first context there without NVML. */
void vram__enforce_card_free(vram__enforce *e, int dev, uint64_t free_bytes);
bool vram__enforce_on(const vram__enforce *e);
const char *vram__enforce_mode_name(const vram__enforce *e);

/* Puts VRAM_SHIM_FD, VRAM_ENFORCE and LD_PRELOAD into a job's environment. */
void vram__enforce_env(const vram__enforce *e, void (*put)(void *user, const char *key, const char *value),
                       void *user);

/* Lets the region's descriptor through the next exec (true), or not. */
void vram__enforce_inherit(const vram__enforce *e, bool inherit);

/* Gives back the bytes of the job's processes that are gone (kill -9 and
 * all); returns how many. */
uint64_t vram__enforce_reclaim(vram__enforce *e);

/* The job's count now (after a reclaim); all zero when not enforcing. */
void vram__enforce_read(vram__enforce *e, vram__enforce_count *out);

#endif
