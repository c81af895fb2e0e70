/* SPDX-License-Identifier: MIT */
/*
 * wire/queue.h - the durable job queue (see queue.c).
 *
 * States and who moves a job between them, each move a compare-and-set in
 * the database so that no job runs twice:
 *
 *   queued --daemon admits--> starting --runner claims--> running
 *   running --runner ends--> succeeded | failed | canceled
 *   queued | starting --cancel--> canceled
 *   starting (never claimed) | running (runner and job gone) --restart--> queued
 */
#ifndef VRAM_WIRE_QUEUE_H
#define VRAM_WIRE_QUEUE_H

#include "core/core.h"

/* The one list of job states, as the queue, the socket protocol, the JSON
 * and /metrics spell them. */
#define VRAM__JOB_STATE_LIST(X) \
    X(QUEUED, "queued")         \
    X(STARTING, "starting")     \
    X(RUNNING, "running")       \
    X(SUCCEEDED, "succeeded")   \
    X(FAILED, "failed")         \
    X(CANCELED, "canceled")

enum {
#define VRAM__JOB_STATE_ENUM(id, name) VRAM__JOB_##id,
    VRAM__JOB_STATE_LIST(VRAM__JOB_STATE_ENUM)
#undef VRAM__JOB_STATE_ENUM
    VRAM__JOB_STATE_COUNT
};

/* "queued" for VRAM__JOB_QUEUED; "?" out of range.  Static. */
const char *vram__job_state_name(int state);
int vram__job_state_parse(const char *name);     /* -1 when unknown */
/* Every state, "queued, starting, ..., canceled", for messages.  Static. */
const char *vram__job_state_list(void);
/* Whether s is an outcome as runners say them ("ok", "oom", "not-started"):
 * a-z and '-' alone, never empty.  A runner may be its user's own program,
 * so an outcome is checked before it is stored or shown. */
bool vram__job_outcome_ok(const char *s);

typedef struct vram__job {
    uint64_t id;
    int state;
    char *argv_json;                /* JSON array of strings */
    char *env_json;                 /* JSON object, "{}" for none */
    char *cwd;
    char *name;
    char *model;                    /* "" when sized by vram_bytes */
    char *settings_json;            /* JSON object */
    char *ladder;                   /* "" for none */
    char *output;                   /* vram submit --output: the job's output file ("" its log) */
    char *deps;                     /* --after / --afterok: "12,ok:13" ("" none); ok: only if it succeeded */
    const char *idem_key;           /* submit's idempotency key: read by vram__queue_add only
                                       (borrowed; never loaded, never freed) */
    int priority;
    uint64_t time_ms;               /* vram submit --time (0: unknown) */
    uint64_t vram_bytes;            /* asked for (0: from the model) */
    uint64_t budget_bytes;          /* sized once, at submit: what it waits for (0: not yet) */
    uint64_t time_limit_ms;         /* each attempt stopped after it (0: none) */
    char tier[32];                  /* the tier it was sized at ("" none) */
    int device_pref;                /* -1: auto */
    uint32_t owner_uid;
    uint64_t submitted_ms, started_ms, ended_ms;
    /* Set as it runs. */
    int device;                     /* admitted on; -1 */
    uint64_t lease_bytes;
    uint32_t runner_pid;            /* the `vram run` that looks after it */
    uint64_t runner_start;          /* its start time in clock ticks since boot: identity */
    uint32_t job_pgid;              /* the command's process group */
    unsigned attempts;              /* starts so far, for requeue policy */
    int exit_status;
    char outcome[16];               /* "ok", "failed", "oom", "signal", "canceled", "lost", ... */
    uint64_t peak_bytes;
    char note[256];
} vram__job;

void vram__job_clear(vram__job *j);   /* frees the strings */

typedef struct vram__queue vram__queue;

/* Opens (creating) the queue database.  Refuses with VRAM_ENOSPC /
 * VRAM_EPERM / VRAM_EIO as the history does. */
int vram__queue_open(const char *path, vram__queue **out);
void vram__queue_close(vram__queue *q);
/* From now on the commits that must reach the disk are written to the
 * write-ahead log without their fsync, and the caller makes it: an
 * fdatasync of vram__queue_log_fd (vramd's syncer: one fsync for
 * everything committed meanwhile).  A submit (or a job put back in the
 * queue) makes vram__queue_take_unsynced true: its client is told nothing
 * before that fsync.  A job's end makes vram__queue_take_lazy true: it is
 * synced soon, with the next fsync or within the caller's bound, and before
 * anyone but the job's runner is told of it.  VRAM_EIO when the log cannot
 * be opened (the commits then fsync as before, ends included). */
int vram__queue_defer_sync(vram__queue *q);
/* Whether a commit since the last call waits for that fsync (and forgets it). */
bool vram__queue_take_unsynced(vram__queue *q);
/* Whether a job's end since the last call is not synced yet (and forgets it). */
bool vram__queue_take_lazy(vram__queue *q);
int vram__queue_log_fd(const vram__queue *q);

/* At a daemon's start: every row's state in range and its text columns
 * text (VRAM_EPARSE naming the file, the job and the column), and the file
 * writable (a write that changes nothing: VRAM_EPERM read-only, VRAM_ENOSPC
 * full), each said now rather than as a crash or a refused submit later. */
int vram__queue_check(vram__queue *q);

/* The job uid submitted with idempotency key `key` (*id 0: none). */
int vram__queue_find_key(vram__queue *q, uint32_t uid, const char *key, uint64_t *id);

/* Stores n new jobs in one durable transaction (synchronous=FULL) and sets
 * their ids and submitted_ms; nothing is stored when it fails. */
int vram__queue_add(vram__queue *q, vram__job *jobs, size_t n);

/* Moves job id from state `from` to `to`, with the fields the move sets
 * (see queue.c; from == to is vram__queue_update; queued to running is a
 * start whose runner had claimed it ahead, one write for both).  Returns 0,
 * or VRAM_EAGAIN when the job was not in `from` (someone else moved it
 * first). */
int vram__queue_move(vram__queue *q, uint64_t id, int from, int to, const vram__job *fields);

/* Records what a job in `state` reports without moving it: its process
 * group, device and lease when given (> 0 / >= 0), and a higher peak. */
int vram__queue_update(vram__queue *q, uint64_t id, int state, const vram__job *fields);

/* Loads one job; VRAM_ENOENT when there is none. */
int vram__queue_get(vram__queue *q, uint64_t id, vram__job *out);

/* Calls visit for every job in a state of the mask (1 << state), oldest
 * first.  The job's strings live only during the call. */
typedef int (*vram__job_visit)(void *user, const vram__job *j);
int vram__queue_each(vram__queue *q, unsigned state_mask, vram__job_visit visit, void *user);

/* Jobs in each state. */
int vram__queue_counts(vram__queue *q, uint64_t counts[VRAM__JOB_STATE_COUNT]);

/* The queue's SQLite connection, for tests that look at its statements
 * (the hot paths' are prepared once and kept). */
struct sqlite3;
struct sqlite3 *vram__queue_db(vram__queue *q);

#endif /* VRAM_WIRE_QUEUE_H */
