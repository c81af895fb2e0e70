/* SPDX-License-Identifier: MIT */
/*
 * wire/protocol.h - the daemon's socket protocol, as data.
 *
 * One JSON object per line, at most VRAM__PROTO_MAX_LINE bytes.  A request
 * names its operation ("op") and may carry an "id" that the reply echoes.
 * Replies are {"id":..,"ok":true,...} or {"id":..,"ok":false,"error":
 * "VRAM_EINVAL","message":"..."}; events pushed to subscribers are
 * {"event":"job",...}.  README.md documents every operation; this file
 * turns a line into a checked request and nothing more.
 */
#ifndef VRAM_WIRE_PROTOCOL_H
#define VRAM_WIRE_PROTOCOL_H

#include "core/json_read.h"

#define VRAM__PROTO_VERSION 1
#define VRAM__PROTO_MAX_LINE 65536
#define VRAM__PROTO_MAX_ARGS 256
#define VRAM__PROTO_MAX_ENV 512
#define VRAM__PROTO_MAX_DEPS 64     /* a submit's after + afterok job ids */

/* The operations, one list for the parser, the dispatcher and the docs. */
#define VRAM_PROTO_OPS(X)                                                          \
    X(HELLO, "hello", "version and pid of the daemon")                              \
    X(SUBMIT, "submit", "queue a job; replies with its id once it is on disk")      \
    X(LIST, "list", "jobs, optionally of one state")                               \
    X(SHOW, "show", "one job")                                                      \
    X(CANCEL, "cancel", "cancel a queued or running job")                           \
    X(LEASE, "lease", "reserve bytes on a device until released or disconnected")   \
    X(RELEASE, "release", "give a lease back")                                      \
    X(SUBSCRIBE, "subscribe", "receive events on this connection")                  \
    X(STATUS, "status", "devices and the host, as `vram status --json`")            \
    X(OWNER, "owner", "name the process group that uses a lease's (or job's) memory") \
    X(JOB_CLAIM, "job-claim", "a job's runner takes its job (internal)")            \
    X(JOB_RUNG, "job-rung", "a job's runner needs another budget (internal)")       \
    X(JOB_PROGRESS, "job-progress", "how far a job is, 0 to 1 (internal)")         \
    X(JOB_ENDED, "job-ended", "a job's runner finished (internal)")                \
    X(LOG, "log", "a job's output from an offset, for its owner (vram log)")

enum {
#define VRAM__OP_ENUM(id, name, help) VRAM__OP_##id,
    VRAM_PROTO_OPS(VRAM__OP_ENUM)
#undef VRAM__OP_ENUM
    VRAM__OP_COUNT
};

typedef struct vram__request {
    int op;                         /* VRAM__OP_* */
    char id[64];                    /* the client's request id, as JSON text ("" none) */
    /* submit */
    size_t argc;
    const char *argv[VRAM__PROTO_MAX_ARGS + 1];
    const vram__jv *env;            /* object of strings: the job's environment, or NULL */
    const char *cwd;
    const char *name;
    const char *key;                /* submit's idempotency key, or NULL */
    uint64_t time_limit_ms;         /* submit's time limit, 0: none */
    const char *model;
    const vram__jv *settings;       /* object of strings, or NULL */
    const char *ladder;
    const char *enforce;            /* "hard", "soft", "off", or NULL */
    int64_t priority;
    uint64_t time_ms;               /* submit: how long the job runs, 0: unknown */
    bool check;                     /* only say whether it would be queued */
    const char *output;             /* the job's output file (absolute), or NULL: its log */
    size_t ndeps;                   /* after_jobs / afterok_jobs: jobs it starts after */
    uint64_t deps[VRAM__PROTO_MAX_DEPS];
    bool dep_ok[VRAM__PROTO_MAX_DEPS];   /* afterok: only if that job succeeded */
    /* submit, lease */
    uint64_t bytes;                 /* 0: not given */
    int device;                     /* -1: auto */
    uint64_t wait_ms;               /* UINT64_MAX: no limit */
    const char *holder;
    /* list */
    const char *state;
    uint64_t limit;
    int after_phase;                /* list's cursor ("after"): VRAM__LIST_*, -1: from the top */
    uint64_t after_id;
    /* show, cancel, log, job-* */
    uint64_t job;
    uint64_t offset;                /* log: from this byte */
    uint64_t runner_pid;
    /* release */
    uint64_t lease;
    /* owner */
    uint64_t pgid;
    /* job-ended */
    int exit_status;
    const char *outcome;
    uint64_t peak;
    bool next;                      /* the runner can take its user's next job (runner reuse) */
    /* job-progress */
    double progress;                /* < 0: not given */
    bool have_usage;                /* the shim's count came with it */
    uint64_t used, over;
    vram__json_doc *doc;            /* owns every string above */
} vram__request;

/* A list is read in pages: running jobs, then starting, then queued (each
 * by id), then the finished newest first.  A page's "next" (and the next
 * request's "after") names the last job it gave: "queued:1234". */
enum { VRAM__LIST_RUNNING, VRAM__LIST_STARTING, VRAM__LIST_QUEUED, VRAM__LIST_DONE, VRAM__LIST_PHASES };
#define VRAM__LIST_CURSOR_MAX 48
/* 0 and the phase and id, or -1 when text is not a cursor. */
int vram__list_cursor_parse(const char *text, int *phase, uint64_t *id);
void vram__list_cursor_format(char *buf, size_t cap, int phase, uint64_t id);

/* Parses one line (without its newline).  On failure returns VRAM_EPARSE or
 * VRAM_EINVAL with a message in err ("unknown field 'colour' in submit")
 * and, when the line had one, the request id in req->id so the error reply
 * can carry it. */
int vram__request_parse(const char *line, size_t len, vram__request *req, char *err, size_t errcap);
void vram__request_free(vram__request *req);

/* The name of an operation ("submit"). */
const char *vram__op_name(int op);

/* Writes the start of a reply, {"id":..,"ok":true, into b; the caller adds
 * its fields and closes with vram__reply_end. */
void vram__reply_begin(vram__buf *b, const vram__request *req, vram__json *j);
void vram__reply_end(vram__json *j);
/* A whole error reply line. */
void vram__reply_error(vram__buf *b, const char *id, int err, const char *message);

/* The client leases a "list" reply carries (every page does), as
 * vram_client_leases gives them: VRAM_ERANGE when there are more than cap,
 * *count_out the whole count (wire/client_status.c). */
int vram__list_reply_leases(const vram__jv *root, vram_lease_info *buf, size_t cap, size_t *count_out);

#endif /* VRAM_WIRE_PROTOCOL_H */
