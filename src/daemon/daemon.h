/* SPDX-License-Identifier: MIT */
/*
 * daemon/daemon.h - vramd's insides, shared by its files.
 *
 * daemon.c runs the main loop and owns the daemon's life; jobs.c keeps the
 * jobs' states (the table, admission, what runners say, recovery); spawn.c
 * starts a job's runner; jobview.c shows a job as JSON; conns.c speaks the
 * socket protocol with clients (every reply is built there); provider.c
 * answers the HTTP server.  One recursive lock,
 * `lock`, guards all daemon state: the main loop holds it for each round's
 * work (not while it waits in poll), the HTTP threads while they read, or
 * submit and cancel.  Ledger callbacks, arriving on the ledger's threads,
 * never take it: they post to the inbox and wake the main loop.
 */
#ifndef VRAM_DAEMON_DAEMON_H
#define VRAM_DAEMON_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "daemon/http.h"
#include "wire/protocol.h"
#include "wire/queue.h"

#define VRAMD_MAX_FINISHED 1000     /* finished jobs kept in memory for lists (at least) */
#define VRAMD_LIST_PAGE_MAX 1000    /* jobs in one list reply; the client asks for the next page */
#define VRAMD_MAX_EVENTS 100
#define VRAMD_MAX_ATTEMPTS 3        /* starts before a lost job is failed, not re-queued */
#define VRAMD_CLAIM_GRACE_MS 15000  /* how long a started runner has to claim its job */
#define VRAMD_PARKED_MAX 4          /* runners with no job, waiting for their user's next */
#define VRAMD_PARK_MS 250           /* how long each waits */
#define VRAMD_END_SYNC_MS 20        /* a job's end is on disk this soon after it is written, at the latest */
#define VRAMD_ANY_VIEWER UINT32_MAX
#define VRAMD_NO_VIEWER (UINT32_MAX - 1) /* sees every job's summary only */
#define VRAMD_MAX_CONNS 512         /* clients at once; the next are refused, told why */
#define VRAMD_MAX_CONNS_PER_USER (VRAMD_MAX_CONNS / 4)  /* of one uid (but the daemon's own): no user shuts out the rest */
#define VRAMD_LEASES_PER_CONN 256   /* leases a connection holds and waits for at once; the next refused */
#define VRAMD_ACCEPT_BACKOFF_MS 250 /* the socket rests this long at the fd limit */
#define VRAMD_CONN_OUT_MAX (1 << 20) /* a client's unread replies before it is not answered more */
#define VRAMD_OUT_TOTAL_MAX (32 << 20) /* all clients' unread replies, likewise */

typedef struct vramd vramd;

/* A job as the daemon keeps it: the durable row and what lives only here. */
/* A move of a job's state the database could not take yet. */
typedef struct vramd_unsaved {
    int from;
    vram__job fields;               /* fields.state: where it goes */
} vramd_unsaved;

typedef struct vramd_job {
    vram__job row;                  /* as in the database (strings owned) */
    uint64_t ticket;                /* its lease request while queued; 0: none */
    uint64_t lease;                 /* the lease it holds; 0: none */
    uint64_t estimate_bytes;        /* what it asks to be admitted with */
    pid_t runner;                   /* our child, when we started its runner */
    pid_t prepared;                 /* queued: its runner, started ahead of its turn */
    uint64_t claim_conn;            /* ... whose claim waits for the turn (0: not yet) */
    char claim_request_id[64];
    bool adopted;                   /* running under a runner of an earlier daemon */
    bool orphan;                    /* its runner is gone, its processes are not */
    bool orphan_timeout;            /* an orphan stopped at its time limit */
    uint64_t orphan_seen_ms;        /* an orphan's processes last looked for */
    uint64_t orphan_kill_ms;        /* an orphan being stopped: SIGKILL then (0: not) */
    uint64_t gone_ms;               /* when its runner was first seen gone (0: not) */
    bool cancel_asked;              /* a cancel was sent to its runner */
    bool dep_wait;                  /* queued, waiting for the jobs of row.deps to end */
    size_t dep_at;                  /* ... its place in d->dep_jobs */
    bool forgotten;                 /* finished and past the number kept: freed at the next sweep */
    char cancel_by[64];             /* who asked: "alice (uid 1000)", "the dashboard" */
    uint64_t claim_by_ms;           /* starting: requeue when unclaimed by then */
    uint64_t used_bytes;            /* its processes' device memory now */
    uint64_t shim_ms;               /* when its runner last sent the shim's count; 0: never */
    uint64_t over_bytes;            /* the most the shim let it past its budget (soft) */
    double progress;                /* 0..1 as its runner last said; < 0: unknown */
    unsigned rung;                  /* the attempt its runner is on (1, 2, ...) */
    char tier[32];
    char *command;                  /* argv as one line, made once, for lists */
    char *log;                      /* vramd_job_log_path's answer, made once */
    char reason[160];               /* why it waits, or why it failed */
    const char *wait_why;           /* the ledger's reason while its request waits
                                       ("Priority", ...; atomic, static strings) */
    /* A job-rung request waiting for its new lease: the runner's reply. */
    uint64_t rung_conn;
    char rung_request_id[64];
    /* An end (or a return to the queue) the database could not take, its
     * disk full: shown now, written when there is room (see store_end). */
    struct vramd_unsaved *unsaved;  /* NULL: all of it is on disk */
    uint64_t start_again_ms;        /* queued: ask for a lease again then (0: no) */
    bool live;                      /* in vramd.live: the loop looks at it */
} vramd_job;

typedef struct vramd_event {
    uint64_t unix_ms;
    char kind[16];                  /* "oom_retry", "oom_failed", "leak" */
    uint64_t job;
    int device;
    char text[200];
} vramd_event;

/* What a ledger callback posts for the main loop. */
typedef struct vramd_msg {
    struct vramd_msg *next;
    int kind;                       /* VRAMD_MSG_* */
    uint64_t key;                   /* job id, or a client request's key */
    int status;
    vram_lease_info lease;
} vramd_msg;

enum { VRAMD_MSG_JOB_GRANT, VRAMD_MSG_CLIENT_GRANT };

/* The user pointer of a lease asked of the ledger: vramd_on_grant, called on
 * whatever thread grants or refuses it, posts a message of KIND for KEY and
 * frees this. */
typedef struct vramd_grant {
    vramd *d;
    int kind;
    uint64_t key;
} vramd_grant;

/* A client on the socket. */
typedef struct vramd_conn {
    struct vramd_conn *next;
    uint64_t id;
    int fd;
    uint32_t pid, uid;              /* SO_PEERCRED's, as it connected */
    int peer_pidfd;                 /* its opener's pidfd, once asked whether it lives; -1 before */
    vram__buf in, out;
    size_t out_sent;                /* bytes of out already sent */
    vram__buf held;                 /* replies waiting for the syncer's fsync, in order */
    uint64_t held_seq;              /* ... the sync round they wait for */
    bool subscribed;
    bool closing;                   /* close once out is flushed */
    bool leased;                    /* asked the ledger for a lease once: its close releases */
    bool runner;                    /* a job's runner: spoke for its job (authz.c); not held for ends' syncs */
    size_t waiting;                 /* its lease requests not answered yet */
    char holder[64];                /* its leases' holder name */
} vramd_conn;

/* A client's lease request waiting for the ledger. */
typedef struct vramd_pending {
    struct vramd_pending *next;
    uint64_t key;                   /* matches the grant's message */
    uint64_t ticket;                /* the ledger's, to withdraw it */
    uint64_t conn;
    char request_id[64];
    uint64_t bytes;                 /* asked */
    int device;                     /* asked for, or VRAM_DEVICE_ANY */
    uint32_t pid;                   /* the client's, from SO_PEERCRED */
    uint64_t since_ms;              /* when it was asked */
    const char *reason;             /* why it waits (the ledger stores it atomically) */
} vramd_pending;

#define VRAMD_LEASE_NAME_MAX 48     /* a client lease's name as shown, NUL included */
#define VRAMD_LEASE_NAMES_MAX 4096  /* leases named at once; past it, shown by their connection */
#define VRAMD_LEASES_SHOWN 256      /* client lease rows in a list */

/* What vramd knows of a client's lease beyond the ledger: the name its
 * client gave it, for lists only (leases.c), and whose connection it is. */
typedef struct vramd_lease_name {
    uint64_t lease;
    uint64_t conn;
    uint32_t uid;                   /* SO_PEERCRED's */
    char name[VRAMD_LEASE_NAME_MAX];  /* cleaned; "" when the client gave none */
} vramd_lease_name;

struct vramd {
    vram_daemon_config cfg;
    vram_ctx *ctx;
    vram_ledger *ledger;
    vram__queue *queue;
    vram__http *http;
    int listen_fd;
    bool socket_activated;          /* listen_fd came from systemd (LISTEN_FDS) */
    int lock_fd;                    /* flock'ed beside the db for the daemon's life */
    uint32_t viewer_uid;            /* whose job JSON is being made (VRAMD_ANY_VIEWER: all shown) */
    int spare_fd;                   /* given up at the fd limit to refuse a client */
    uint64_t accept_after_ms;       /* the socket is not polled before (fd limit) */
    char socket_path[4096], db_path[4096], runner_path[4096], history_path[4096];
    char token[VRAM__TOKEN_LEN + 1];

    pthread_mutex_t lock;           /* the daemon's one lock (recursive) */
    vramd_job **jobs;               /* by id, ascending */
    size_t njobs, cap_jobs;
    vramd_job **live;               /* starting, running, or queued to ask again: what */
    size_t nlive, cap_live;         /* each loop round looks at, however long the queue */
    size_t finished_kept;           /* finished jobs kept: those in d->done */
    vramd_job **done;               /* the finished ones kept, by id, ascending: the oldest */
    size_t cap_done;                /* ... are forgotten first, the lists read them newest first */
    size_t forgotten;               /* forgotten, still in d->jobs until the next sweep of it */
    uint64_t counts[VRAM__JOB_STATE_COUNT];     /* jobs in the table by state, kept as they move */
    uint64_t shim_used, over_total; /* vramd_jobs_shim's sums, kept (vramd_job_usage_count) */
    size_t dep_waiting;             /* queued jobs waiting for others to end (--after) */
    vramd_job **dep_jobs;           /* ... which they are, looked at again when a job ends */
    size_t cap_dep_jobs;            /* (dep_waiting of them, unless dep_unlisted) */
    bool dep_unlisted;              /* one could not be listed (no memory): all jobs are walked */
    size_t nprepared;               /* queued jobs whose runner waits, started ahead */
    uint64_t prepare_from;          /* the first job id not yet looked at for that */
    bool deps_changed;              /* a job ended since the waiting ones were looked at */
    vramd_event events[VRAMD_MAX_EVENTS];
    size_t nevents, next_event;
    vram__wait_histogram waits;
    uint64_t finished_total[VRAM__OUTCOMES]; /* ends seen since start, by outcome */
    uint64_t ended[VRAM__JOB_STATE_COUNT];   /* ends seen since start, by final state: never
                                              * lowered when a kept job is forgotten (the
                                              * list's "ended", what `vram wait --all` judges) */
    vram__duration_histogram durations;      /* of the jobs that ran and ended since start */
    uint64_t oom_retries;
    uint64_t version;               /* grows on every change the page shows */
    uint64_t next_usage_ms;         /* when running jobs' usage is read next */
    /* Per device, its used memory when no job of ours ran on it: the base
     * of per-lease accounting where NVML's pids are not this /proc's. */
    uint64_t usage_base[VRAM_MAX_DEVICES];
    bool usage_base_known[VRAM_MAX_DEVICES];
    size_t unsaved;                 /* jobs whose state waits to be written */
    uint64_t next_save_ms;          /* when they are tried next */

    vramd_conn *conns;
    uint64_t next_conn_id;
    struct submit_batch *batch;     /* submits of this loop round, stored together */
    vramd_pending *pending;
    uint64_t next_grant_key;
    vramd_lease_name *names;        /* by lease id, ascending (leases.c) */
    size_t nnames, cap_names;

    /* The syncer (daemon.c): one fsync of the queue's log for everything
     * committed in one loop round (submits), made by the loop itself when
     * an fsync is quick, else by the syncer thread beside the loop; replies
     * about them wait in their client's `held` until it is done.  Jobs'
     * ends ride on the next such fsync, or have one of their own
     * VRAMD_END_SYNC_MS after them, or at once in a round that tells a
     * client (not a runner) of them. */
    bool syncer_on;
    pthread_t syncer;
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
    pthread_cond_t sync_idle;       /* sync_busy went false (an HTTP thread waits for it) */
    uint64_t sync_want, sync_done;  /* rounds asked to be synced, and synced (under sync_lock) */
    uint64_t sync_floor;            /* the sync made at the start, that every reply waits for */
    bool sync_busy;                 /* an fsync is under way, by either thread (under sync_lock) */
    uint64_t sync_us;               /* how long an fsync takes, a moving average (under sync_lock) */
    int sync_errno;                 /* an fsync failed, with this: nothing is synced after it (under sync_lock) */
    bool sync_stop;
    bool round_unsynced;            /* this round committed what waits for a sync */
    bool round_submitted;           /* among it, submits: their clients wait for that sync */
    uint64_t ends_unsynced_ms;      /* jobs' ends written and not yet asked to be synced: since when (0: none) */
    bool round_told_end;            /* this round told a client (not a runner) of them: it waits for their sync */
    bool sync_unwaited;             /* the last asked is for ends nobody waits for: the syncer's */

    pthread_mutex_t inbox_lock;
    vramd_msg *inbox;
    int wake[2];                    /* a byte here wakes the main loop */
    pthread_t loop_thread;          /* whose posts need no wake: it reads the inbox before it sleeps */
    bool stopping;

    /* Runners whose job ended with no next job queued, waiting a little
     * for one (a batch submitted job by job): their job-ended's reply is
     * held (jobs.c vramd_runner_park). */
    struct vramd_parked {
        uint64_t conn;
        char request_id[64];
        pid_t pid;
        uint32_t uid;
        char *env;                  /* the ended job's environment */
        uint64_t until_ms;
    } parked[VRAMD_PARKED_MAX];
    size_t nparked;

    /* The runners vramd forked and has not reaped, with their start times
     * (clock ticks, read once; 0: not read yet): while one is unreaped its
     * pid names it alone, so what runners say needs no /proc read
     * (spawn.c vramd_runner_alive).  Main loop only. */
    struct vramd_kid {
        pid_t pid;
        uint64_t start;
    } *kids;
    size_t nkids, kids_cap;

    /* The spawner (spawn.c): a process of this program, exec'd once at the
     * start, that forks runners as vramd's children on request, so that a
     * runner needs no exec of its own.  -1 when there is none (or it
     * failed: runners are then forked and exec'd here, as before). */
    int spawner_fd;
    pid_t spawner_pid;
    bool spawner_said;              /* its hello read */
};

/* ---- daemon.c ---- */
/* The sync round a reply made now waits for before it is sent (0: none):
 * this round's when it committed something not yet on disk, or when the
 * reply goes to a client that is not a runner and jobs' ends are not on
 * disk yet; for such a client, also an earlier round's still under way;
 * else the one made at the start until it is done.  Main loop only. */
uint64_t vramd_reply_wait(vramd *d, bool to_runner);
/* Before the dashboard answers (provider.c, on the HTTP threads, under
 * d->lock): once no other fsync is under way, jobs' ends written so far,
 * the rounds asked, and what a page's submit wrote are fsync'ed, as for a
 * socket client that is no runner (vramd_reply_wait).
 * VRAM_EIO when an fsync failed: the page is not served, and the loop
 * stops vramd. */
int vramd_page_sync(vramd *d);
/* conns.c: sends the held replies of rounds synced up to `done`. */
void vramd_conns_release(vramd *d, uint64_t done);
/* conns.c: every client's held replies, whose sync can no longer come,
 * become one error (err, message) each. */
void vramd_conns_fail_held(vramd *d, int err, const char *message);
/* authz.c: 0 when c may make request r, else a refusal (VRAM_EPERM, with
 * a message naming who asked and why not).  Identity is SO_PEERCRED's.
 * A connection that speaks for its job as its runner is marked c->runner. */
int vramd_authorize(vramd *d, vramd_conn *c, const vram__request *r);
/* authz.c: whether process pid is this vramd's child (a runner, the
 * spawner): the kernel's word, from /proc. */
bool vramd_is_my_child(uint32_t pid);
/* conns.c: whether c's next request may be answered now (its unread
 * replies, and total_out of all clients', under the caps). */
bool vramd_conn_may_ask(const vramd *d, const vramd_conn *c, size_t total_out);
bool vramd_may_submit(const vramd *d, uint32_t uid);

/* Whom a job's runner runs as: its submitter, when the daemon is root. */
#define VRAMD_MAX_GROUPS 256
typedef struct vramd_identity {
    uint32_t uid, gid;
    gid_t groups[VRAMD_MAX_GROUPS];
    int ngroups;
    bool change;                    /* false: stay the daemon's user */
    /* The submitter's account, for HOME, USER, LOGNAME and SHELL (set
     * only when change is). */
    char name[64], home[1024], shell[256];
} vramd_identity;
/* Looks the submitter up (before forking); VRAM_EPERM when it cannot be. */
int vramd_identity_of(uint32_t uid, vramd_identity *out);
/* In the forked runner: gives the log to the submitter and becomes them
 * (groups, gid, uid, for good).  Async-signal-safe; -1 when it cannot. */
int vramd_become(const vramd_identity *id, int log_fd);

#define vramd_say(d, ...) vram__say((d)->cfg.say, (d)->cfg.say_user, __VA_ARGS__)
void vramd_wake(vramd *d);
void vramd_post(vramd *d, vramd_msg *m);
/* Under d->lock, on the loop's thread: the grants posted so far, handled
 * in order (held claims answered, runners started, leases told). */
void vramd_handle_inbox(vramd *d);
vramd_grant *vramd_grant_new(vramd *d, int kind, uint64_t key);
void vramd_on_grant(void *user, int status, const vram_lease_info *lease);
void vramd_changed(vramd *d);       /* under d->lock: bump the version */
void vramd_event_add(vramd *d, const char *kind, uint64_t job, int device, const char *fmt, ...)
    VRAM__PRINTF(5, 6);

/* A job in a state it never leaves. */
static inline bool vramd_state_final(int state)
{
    return state == VRAM__JOB_SUCCEEDED || state == VRAM__JOB_FAILED || state == VRAM__JOB_CANCELED;
}

/* ---- joblog.c ---- */
#define VRAMD_LOG_CHUNK (48 * 1024)  /* bytes of a log in one reply (base64: 64 KiB) */
/* The log op's fields for job j from byte `offset` (inside the reply
 * object o): state, ended, and offset, size and data_base64, or output
 * (the --output file the command reads itself).  Under nothing: the caller
 * has found j in the loop thread. */
int vramd_job_log_json(vramd *d, const vramd_job *j, uint64_t offset, vram__json *o);

/* ---- jobview.c: users ---- */
/* "alice (uid 1000)", or "uid 1000" when the system has no name for it;
 * returns buf. */
const char *vramd_user_text(uint32_t uid, char *buf, size_t cap);
/* The user's name ("" when the system has none), cached; static storage
 * valid until the next call from the same thread. */
const char *vramd_user_name(uint32_t uid);

/* ---- jobs.c ---- */
vramd_job *vramd_job_find(vramd *d, uint64_t id);
int vramd_jobs_recover(vramd *d);
int vramd_jobs_submit(vramd *d, vram__job *rows, size_t n, char *err, size_t errcap);
/* Whether vramd_jobs_submit would take row, queueing nothing. */
int vramd_jobs_check(vramd *d, const vram__job *row, char *err, size_t errcap);
int vramd_job_cancel(vramd *d, uint64_t id, const char *by);
void vramd_job_granted(vramd *d, const vramd_msg *m);
int vramd_job_claim(vramd *d, uint64_t id, uint32_t pid, vram_lease_info *out);
/* A claim from the runner started ahead for a queued job: held, and
 * answered when the job's turn comes (true), or not such a claim (false). */
bool vramd_job_claim_ahead(vramd *d, vramd_conn *c, const vram__request *req);
/* Runner reuse: the runner (pid) of `ended`, a job that has just ended,
 * takes its user's next queued job with the same environment, as if
 * started ahead for it; NULL when there is none (it then exits). */
vramd_job *vramd_job_runner_next(vramd *d, uint64_t ended, uint32_t pid);
/* j's runner started ahead (or reused) will not come: forgotten, not
 * killed (it ends by itself). */
void vramd_job_runner_gone(vramd *d, vramd_job *j);
/* A runner (connection c, request r) whose job ended asked for a next job
 * and none was queued: true when it is parked, its reply held until a job
 * of its user's comes (vramd_reply_next then) or VRAMD_PARK_MS pass. */
bool vramd_runner_park(vramd *d, vramd_conn *c, const vram__request *r);
/* conns.c: the job-ended reply to a runner that asked for a next job:
 * next (or none, NULL).  False when the connection is gone or the reply
 * could not be made. */
bool vramd_reply_next(vramd *d, uint64_t conn, const char *request_id, vramd_job *next);
/* Whether pid is the runner started ahead for job id, still queued. */
bool vramd_job_runner_ahead(const vramd *d, uint64_t id, uint32_t pid);
/* Whether pid is the live runner of a job that is starting or running,
 * this vramd's or one adopted from an earlier one (its start time as the
 * queue has it: not a later process given that pid). */
bool vramd_jobs_runner_alive(vramd *d, uint32_t pid);
int vramd_job_rung(vramd *d, vramd_conn *c, const vram__request *req);
int vramd_job_owner(vramd *d, uint64_t id, uint32_t pgid);
int vramd_job_ended(vramd *d, uint64_t id, int exit_status, const char *outcome, uint64_t peak);
/* progress < 0: not given; with usage, the shim's count of the job's bytes
 * (used) and its most past the budget (over), which then stand for the
 * process-group sample for a while. */
int vramd_job_progress(vramd *d, uint64_t id, double progress, bool usage, uint64_t used, uint64_t over);
/* The shims' counts: running jobs' bytes, and the kept jobs' overages,
 * summed (for /metrics).  Under d->lock. */
void vramd_jobs_shim(vramd *d, uint64_t *used, uint64_t *over);
/* Takes a job's part out of those sums (in false) before its state, usage,
 * overage or being forgotten changes, and puts it back (in true) after.
 * Under d->lock. */
void vramd_job_usage_count(vramd *d, const vramd_job *j, bool in);
void vramd_jobs_tick(vramd *d);     /* every loop: runners reaped, claims, orphans, usage */
void vramd_jobs_reaped(vramd *d, pid_t pid, int status);
/* jobs.c: the first of v (n jobs, ids ascending) whose id is >= id. */
size_t vramd_jobs_lower_bound(vramd_job *const *v, size_t n, uint64_t id);
/* stop.c: signals (0: counts) what a job whose runner is gone still runs. */
size_t vramd_job_signal_orphan(const vramd *d, const vramd_job *j, int sig);
/* stop.c: removes the empty cgroups (vram-job-<runner>-<n>) of a runner
 * vramd has reaped or killed, which keeps its last one for its next job;
 * runner 0: those of every runner that is gone (at start). */
void vramd_runner_cgroups_tidy(pid_t runner);
/* spawn.c: whether the job's runner was handed its end file open, as fd 4
 * (a submitter without a home, whose log and end are beside the queue). */
bool vramd_end_by_fd(const vramd *d, const vramd_job *j, const char *end_path);
void vramd_jobs_free(vramd *d);
/* Sizes a job from its row (vram_bytes, or a plan of its model). */
int vramd_job_estimate(vramd *d, vramd_job *j);

/* ---- spawn.c ---- */
/* Forks the job's runner, which starts and waits at its gate: *gate_out is
 * the gate's write end, for vramd_runner_gate. */
int vramd_runner_fork(vramd *d, const vramd_job *j, pid_t *pid_out, int *gate_out);
/* Lets the runner go on (go) or away (!go: it ends at once, and the loop
 * reaps it); closes the gate. */
int vramd_runner_gate(vramd *d, uint64_t job, pid_t pid, int gate, bool go);
/* A runner vramd forked is remembered (its start read when first asked; one
 * not remembered, for want of memory, is looked up in /proc as any other
 * process); once reaped (by whoever waited for it), forgotten. */
void vramd_runner_forked(vramd *d, pid_t pid);
void vramd_runner_reaped(vramd *d, pid_t pid);
/* pid's start time (clock ticks; 0 when it is gone): a runner vramd forked
 * and has not reaped from memory, read from /proc only once; any other
 * process's from /proc. */
uint64_t vramd_runner_start(vramd *d, uint32_t pid);
/* Whether pid is alive and started at start_ticks (0: any start), as
 * vram__proc_alive says: for a runner vramd forked and has not reaped, told
 * by its remembered start and a waitid that reaps nothing (its pid cannot
 * name another process until it is reaped); else read from /proc. */
bool vramd_runner_alive(vramd *d, uint32_t pid, uint64_t start_ticks);
void vramd_runner_kids_free(vramd *d);
/* Starts the spawner (nothing is lost without one: it is a way to start
 * runners for less, never the only one); ends it (it ends at its socket's
 * EOF, and the loop reaps it). */
void vramd_spawner_start(vramd *d);
void vramd_spawner_stop(vramd *d);
void vramd_spawner_reaped(vramd *d, pid_t pid);

/* ---- jobview.c ---- */
void vramd_job_json(vramd *d, const vramd_job *j, vram__json *out);
/* One page of the jobs (in the order VRAM__LIST_* says) as a JSON array:
 * at most limit of them (0 or more than VRAMD_LIST_PAGE_MAX: that many), of
 * `state` (< 0: all), after (after_phase, after_id) (after_phase < 0: from
 * the top).  When the page is full, next (if given) gets the cursor of its
 * last job, else "".  Its cost is the page's, not the queue's (but for the
 * finished ones behind a long queue, or a state filter). */
int vramd_jobs_list_json(vramd *d, int state, uint64_t limit, int after_phase, uint64_t after_id,
                         vram__json *out, char *next, size_t nextcap);
void vramd_jobs_counts(vramd *d, uint64_t counts[VRAM__JOB_STATE_COUNT]);
/* The ends seen since vramd started, by final state (vramd.ended): a
 * counter a forgotten job does not lower, so that two lists' difference is
 * the jobs that ended between them. */
void vramd_jobs_ended(vramd *d, uint64_t ended[VRAM__JOB_STATE_COUNT]);
/* Tells subscribers (vram wait, the dashboard) that a job changed. */
void vramd_job_announce(vramd *d, vramd_job *j);
/* Whether viewer (a uid, VRAMD_ANY_VIEWER or VRAMD_NO_VIEWER) sees the
 * whole of a job of owner's: command, log.  Others see its summary. */
bool vramd_viewer_sees(uint32_t viewer, uint32_t owner);
#define VRAMD_HIDDEN_COMMAND "(another user's job)"
/* Where a job's log is, and beside it the file its runner writes its end
 * into when no vramd hears it (".end" for ".log").  A job run as its
 * submitter by a root vramd logs in the submitter's own folder,
 * ~/.local/state/vram/jobs/TAG/N.log (TAG: which queue; the folder 0700,
 * made by the runner as the submitter), which only they (and root) can
 * read; any other job (and one of a submitter without a home of their
 * own) in DB.logs/N.log beside the queue.  0, or VRAM_EPERM
 * when the submitter has no account to log under.  This is the one answer
 * to "where is job N's log" (`show`'s "log" gives it to the owner). */
int vramd_job_log_path(vramd *d, const vramd_job *j, char *buf, size_t cap);
int vramd_job_end_path(vramd *d, const vramd_job *j, char *buf, size_t cap);

/* ---- conns.c ---- */
void vramd_conn_accept(vramd *d);
void vramd_conn_readable(vramd *d, vramd_conn *c);
void vramd_conn_writable(vramd *d, vramd_conn *c);
void vramd_conn_reply(vramd *d, vramd_conn *c, const char *line);
vramd_conn *vramd_conn_find(vramd *d, uint64_t id);
void vramd_conns_sweep(vramd *d);   /* frees closed connections and their leases */
void vramd_client_granted(vramd *d, const vramd_msg *m);
/* Answers a request for memory (lease, job-claim, job-rung) on connection
 * conn: the lease (and for a claim, the job's record: see wire/record.h),
 * or status with message (NULL: status's own words).  False when nothing
 * could be sent (the connection is gone, or no host memory): the caller
 * then gives a granted lease back. */
bool vramd_reply_lease(vramd *d, uint64_t conn, const char *request_id, int status, const char *message,
                       const vram_lease_info *lease, const vram__job *record);
/* To subscribers: line to those who may see the whole of a job of owner's
 * (vramd_viewer_sees), others_line (NULL: line) to the rest. */
void vramd_broadcast(vramd *d, const char *line, const char *others_line, uint32_t owner);
/* Which subscribers there are for a job of owner's: bit 1, some see it
 * whole; bit 2, some see its summary only. */
unsigned vramd_subscribers(const vramd *d, uint32_t owner);
void vramd_conns_flush(vramd *d);  /* stores and answers this round's submits */
void vramd_conns_free(vramd *d);

/* ---- leases.c ---- */
void vramd_lease_name_clean(const char *in, char *out, size_t cap);
void vramd_lease_name_add(vramd *d, uint64_t lease, uint64_t conn, uint32_t uid, const char *name);
const vramd_lease_name *vramd_lease_name_find(const vramd *d, uint64_t lease);
void vramd_lease_name_drop(vramd *d, uint64_t lease);
void vramd_lease_names_drop_conn(vramd *d, uint64_t conn);
void vramd_lease_names_free(vramd *d);
/* The client leases held and waiting, as an array of rows of kind "lease"
 * (README "Socket protocol", the list reply's "leases"). */
void vramd_leases_json(vramd *d, vram__json *j);

/* ---- provider.c ---- */
void vramd_provider(vramd *d, vram__http_provider *p);

/* systemd.c: the socket systemd handed over (*fd_out -1 when none; an error
 * when what it handed is unusable), and readiness ("READY=1", "STOPPING=1"). */
int vramd_systemd_listen_fd(int *fd_out);
void vramd_systemd_notify(const char *state);

#endif /* VRAM_DAEMON_DAEMON_H */
