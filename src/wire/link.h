/* SPDX-License-Identifier: MIT */
/*
 * wire/link.h - a runner's line to vramd (see link.c).
 *
 * What a `vram run` says to the daemon, as calls: a lease for a run of its
 * own, or, for a job the daemon queued, the job protocol (claim, rung,
 * owner, progress, ended).  The runner never builds a request or touches
 * the job store: this file does both, and the job store only when no vramd
 * is left to tell.
 */
#ifndef VRAM_WIRE_LINK_H
#define VRAM_WIRE_LINK_H

#include <stdbool.h>

#include "core/core.h"
#include "wire/record.h"

typedef struct vram__link {
    vram_client *daemon;            /* NULL: no vramd answered */
    uint64_t job;                   /* the daemon's job this link looks after; 0: none */
    char db_path[4096];             /* the job store, for ends no vramd can hear */
    char end_path[4096];            /* the job's end file, from the claim's reply ("": none) */
    uint64_t next_reconnect_ms;     /* a job's runner looks for a new vramd this often */
    uint32_t pgid_unsent;           /* a job's process group no vramd heard yet (0: none) */
} vram__link;

typedef struct vram__grant {
    uint64_t lease;
    int device;
    uint64_t bytes;                 /* 0 when the daemon did not say */
} vram__grant;

/* Connects to the vramd on `socket` (NULL or "": the default path).  For a
 * job (job > 0) it keeps trying for a while, as a daemon may be restarting;
 * otherwise once.  db_path (may be NULL) is the daemon's job store.
 * Returns 0, or the connection's error (l->daemon stays NULL). */
int vram__link_open(vram__link *l, const char *socket, const char *db_path, uint64_t job);
void vram__link_close(vram__link *l);
/* A reused runner's job ended with a next one to run: its connection is
 * kept (taken from l, which vram__link_close then leaves alone) for the
 * next vram__link_open of a job on the same socket, which uses it instead
 * of connecting: one connection a runner, not one a job. */
void vram__link_keep(vram__link *l);

/* A lease of `bytes` for a run of one's own (device -1: any; wait_ms -1:
 * for ever). */
int vram__link_lease(vram__link *l, uint64_t bytes, int device, int64_t wait_ms, vram__grant *out);

/* The job's runner takes its job: its first budget in *out and, when
 * record is not NULL, the job itself (its command, settings, ladder: see
 * wire/record.h; free with vram__record_free).  pid is the runner's. */
int vram__link_claim(vram__link *l, uint32_t pid, vram__grant *out, vram__record *record);

/* The job's runner needs another budget, for its next rung. */
int vram__link_rung(vram__link *l, uint64_t bytes, vram__grant *out);

/* The process group that uses a lease's (or the job's) memory.  For a job,
 * when no vramd hears it, it goes to the job store for the next one, and
 * is told again to the next vramd (vram__link_owner_again): a runner run
 * as the job's submitter may not write a root vramd's store. */
void vram__link_owner(vram__link *l, uint64_t lease, uint32_t pgid);
/* Tells a job's process group no vramd heard yet to the vramd now on the
 * socket (at most once a second: the runner calls it as it samples). */
void vram__link_owner_again(vram__link *l);

/* Gives a lease of one's own back (a job's lease the daemon frees itself). */
void vram__link_release(vram__link *l, uint64_t lease);

/* How far the job is, 0 to 1; lost when no vramd hears it. */
void vram__link_progress(vram__link *l, double progress);
/* The job's device bytes now and the most it went past its budget, as the
 * shim counts them (a job-progress without a progress figure). */
void vram__link_usage(vram__link *l, uint64_t used, uint64_t over);

/* The job's end.  When no vramd hears it, it is written to the job store,
 * where the next vramd finds it (and does not run the job again); a job
 * whose command never started (ran false) is queued again instead.  A
 * runner that cannot write the store (a root vramd's, 0600, when the job
 * runs as its submitter) writes the job's end file instead, which vramd
 * named in the claim's reply: the next vramd reads it (vram__end_read). */
/* With next not NULL, it also asks for the same user's next job (runner
 * reuse; next->job stays 0 when there is none or no vramd heard). */
void vram__link_ended(vram__link *l, int exit_status, const char *outcome, uint64_t peak, bool ran,
                      vram_job_next *next);

/* A job's end as its end file holds it, one JSON line:
 * {"job":N,"exit_status":E,"outcome":"ok","peak":BYTES,"ran":true}. */
typedef struct vram__end {
    uint64_t job;
    int exit_status;
    char outcome[16];               /* a-z and '-' only */
    uint64_t peak;
    bool ran;
} vram__end;
/* Writes it (0600, made new: an old file is replaced, never followed). */
int vram__end_write(const char *path, const vram__end *e);
/* Reads path as a file of uid's (vramd reads a user's file: a link, a
 * file of another owner, one not regular, over 4 KiB, or not this form is
 * refused); VRAM_ENOENT when there is none. */
int vram__end_read(const char *path, uint32_t uid, vram__end *out);

#endif /* VRAM_WIRE_LINK_H */
