/* SPDX-License-Identifier: MIT */
/*
 * daemon/http.h - the dashboard's HTTP server and what it asks of the daemon.
 *
 * The server (http.c) serves the page embedded from web/, the /api/ JSON
 * documents, a stream of change notices and /metrics.  It knows nothing of
 * jobs, queues or leases: what it shows comes from a provider, a table of
 * functions the daemon fills in.  dashboard.c builds the device half of
 * that (status document, device metrics) from a context and its monitor;
 * the daemon adds jobs, events and counters.  token.c keeps the token that
 * changes (submit, cancel) need.
 *
 * Endpoints (README "Dashboard and metrics" documents them for people):
 *   GET  /  /app.js  /style.css  /favicon.svg    the page
 *   GET  /api/status                            provider->status_json
 *   GET  /api/jobs                              provider->jobs_json
 *   GET  /api/events                            provider->events_json
 *   GET  /api/stream                            server-sent events (below)
 *   POST /api/jobs                              provider->submit   (token)
 *   POST /api/jobs/ID/cancel                    provider->cancel   (token)
 *   GET  /metrics                               provider->metrics, as text
 */
#ifndef VRAM_DAEMON_HTTP_H
#define VRAM_DAEMON_HTTP_H

#include "core/core.h"
#include "core/json_read.h"
#include "wire/queue.h"

/* ---- what the provider reports ------------------------------------------ */


/* Upper bounds, in seconds, of the admission-wait histogram's buckets (a
 * last +Inf bucket follows).  Video jobs wait from milliseconds (room now)
 * to an hour (behind a long render). */
#define VRAM__WAIT_BUCKET_LIST(X) \
    X(0.01) X(0.1) X(0.5) X(1) X(5) X(15) X(60) X(300) X(900) X(3600)

enum {
#define VRAM__WAIT_BUCKET_ONE(le) +1
    VRAM__WAIT_BUCKETS = 0 VRAM__WAIT_BUCKET_LIST(VRAM__WAIT_BUCKET_ONE)
#undef VRAM__WAIT_BUCKET_ONE
};

/* Time from submit to admission, kept by the daemon as jobs start. */
typedef struct vram__wait_histogram {
    uint64_t counts[VRAM__WAIT_BUCKETS + 1]; /* per bucket (not cumulative); last: over 3600 s */
    double sum_seconds;
} vram__wait_histogram;

/* Counts one wait of `seconds` (negative counts as 0). */
void vram__wait_histogram_add(vram__wait_histogram *h, double seconds);

/* Upper bounds, in seconds, of the job-duration histogram's buckets (start
 * to end of the jobs that ran): a second to half a day. */
#define VRAM__DURATION_BUCKET_LIST(X) \
    X(1) X(10) X(60) X(300) X(900) X(1800) X(3600) X(7200) X(14400) X(43200)

enum {
#define VRAM__DURATION_BUCKET_ONE(le) +1
    VRAM__DURATION_BUCKETS = 0 VRAM__DURATION_BUCKET_LIST(VRAM__DURATION_BUCKET_ONE)
#undef VRAM__DURATION_BUCKET_ONE
};

typedef struct vram__duration_histogram {
    uint64_t counts[VRAM__DURATION_BUCKETS + 1]; /* per bucket; last: over the last bound */
    double sum_seconds;
} vram__duration_histogram;

/* Counts one job that ran for `seconds` (negative counts as 0). */
void vram__duration_histogram_add(vram__duration_histogram *h, double seconds);

/* How finished jobs ended, the label of vram_jobs_finished_total: the
 * runner's and the daemon's outcomes; anything else counts as "other". */
#define VRAM__OUTCOME_LIST(X) \
    X(OK, "ok") X(FAILED, "failed") X(OOM, "oom") X(SIGNAL, "signal") X(TIMEOUT, "timeout") \
    X(CANCELED, "canceled") X(LOST, "lost") X(NOT_STARTED, "not-started") X(OTHER, "other")

enum {
#define VRAM__OUTCOME_ENUM(id, name) VRAM__OUTCOME_##id,
    VRAM__OUTCOME_LIST(VRAM__OUTCOME_ENUM)
#undef VRAM__OUTCOME_ENUM
    VRAM__OUTCOMES
};

/* The VRAM__OUTCOME_* of an outcome text (OTHER when unknown or NULL). */
int vram__outcome_index(const char *outcome);

#define VRAM__METRICS_MAX_DEVICES 64

typedef struct vram__metrics_device {
    unsigned index;
    char name[VRAM_NAME_MAX];
    char uuid[VRAM_NAME_MAX];
    uint64_t total_bytes;
    uint64_t used_bytes;
    uint64_t free_bytes;
    uint64_t leased_bytes;          /* held by vram leases (the dashboard's "ours") */
    uint64_t others_bytes;          /* used that no lease explains */
    uint64_t safe_available_bytes;
    uint64_t driver_reserved_bytes; /* set aside by the driver (NVML v2) */
    uint64_t capacity_bytes;        /* total - driver reserved - margin; 0 when lost */
    uint64_t lost;                  /* 1: the GPU is lost (takes no work), the rest 0 */
} vram__metrics_device;

/* Everything /metrics shows, filled by provider->metrics on a zeroed struct. */
typedef struct vram__metrics {
    int simulated;                  /* 1: the devices are the sim backend's */
    unsigned ndevices;              /* readable devices in devices[] */
    vram__metrics_device devices[VRAM__METRICS_MAX_DEVICES];
    uint64_t jobs[VRAM__JOB_STATE_COUNT]; /* jobs in each state now (finished: kept ones) */
    vram__wait_histogram admission_wait;
    uint64_t finished_total[VRAM__OUTCOMES]; /* jobs that ended since start, by outcome */
    vram__duration_histogram job_duration;   /* of the jobs that ran, since start */
    uint64_t oom_retries_total;     /* retries after an out-of-memory, since start */
    uint64_t leases;                /* leases held now */
    uint64_t shim_used_bytes;       /* running jobs' device bytes as their shims count them */
    uint64_t over_bytes;            /* how far --enforce soft let the kept jobs past their budgets */
} vram__metrics;

/* The metrics as Prometheus text exposition format 0.0.4: HELP and TYPE for
 * every family, labels escaped, and the calling process's process_*
 * family (CPU, resident memory, open and most fds, start time, read from
 * /proc).  Free *text with free. */
int vram__metrics_text(const vram__metrics *m, char **text);

/* ---- the provider ------------------------------------------------------- */

/*
 * The daemon's side.  Every function is called on the server's threads,
 * several at once, and must be thread-safe; none may be NULL.  JSON comes
 * back as a malloc'd string the server frees; the server checks that it
 * parses and answers 500 when it does not.  A failing call returns a
 * negative VRAM_E* with vram__fail's message; the server answers with it:
 * VRAM_EINVAL, _EPARSE, _ERANGE, _BUDGET 400; _NOENT 404; _BUSY 409;
 * _NOFIT 422; _AGAIN, _SHUTDOWN 503; _NOSPC 507; others 500.
 *
 * status_json: {"snapshot": <the `vram status --json` document>,
 *   "history": [{"index": 0, "window_ms": 300000, "age_ms": [...],
 *   "leased_bytes": [...], "others_bytes": [...], "free_bytes": [...]}]}
 *   (vram__dashboard_status_json makes it).
 * jobs_json: {"jobs": [JOB...]} as `viewer` may see them (a local uid, from
 *   the kernel's table of the loopback connection, for a request whose Host
 *   is a loopback name; VRAM__HTTP_VIEWER_ALL
 *   for a request that carries the token; VRAM__HTTP_VIEWER_NONE for a
 *   client not known), running first, then queued in queue order,
 *   then recently finished, newest first.  JOB: "id" (1 to 64 of
 *   [A-Za-z0-9_.-]), "state" (VRAM__JOB_STATE_LIST), "command", "tier",
 *   "estimate_bytes", "used_bytes" (its processes' real usage now),
 *   "peak_bytes", "progress" (0..1), "device", "attempt" (1, 2, ... as the
 *   ladder climbs), "submitted_unix_ms", "started_unix_ms",
 *   "ended_unix_ms", "outcome" ("ok", "failed", "oom", "signal",
 *   "canceled") and "reason" (why it waits or failed); null where unknown.
 * events_json: {"events": [EVENT...]}, newest first, a bounded number.
 *   EVENT: "unix_ms", "kind" ("oom_retry", "oom_failed", "leak"), "job"
 *   (id or null), "device" (index or null), "text" (one sentence).
 * metrics: fills the zeroed *out (vram__dashboard_metrics_devices fills
 *   the device part).
 * submit: the body of POST /api/jobs, already parsed and known to be an
 *   object.  The page sends {"command": "TEXT as typed, for /bin/sh -c",
 *   "vram": "SIZE" (optional), "ladder": "TEXT" (optional)}; unknown
 *   fields are the provider's to refuse.  Reply: {"id": "..."}.
 * cancel: the job's id, checked against the id alphabet.  Reply:
 *   {"id": "...", "state": "..."}.  VRAM_ENOENT for no such job,
 *   VRAM_EBUSY for one already finished.
 * version: a number that grows whenever jobs or events change; the stream
 *   polls it to tell pages to reload.
 */
typedef struct vram__http_provider {
    void *user;
    int (*status_json)(void *user, char **json);
    int (*jobs_json)(void *user, uint32_t viewer, char **json);
    int (*events_json)(void *user, char **json);
    int (*metrics)(void *user, vram__metrics *out);
    int (*submit)(void *user, const vram__jv *request, char **reply_json);
    int (*cancel)(void *user, const char *job_id, char **reply_json);
    uint64_t (*version)(void *user);
} vram__http_provider;

/* ---- the server --------------------------------------------------------- */

#define VRAM__HTTP_VIEWER_ALL UINT32_MAX          /* the token's holder: the daemon's user */
#define VRAM__HTTP_VIEWER_NONE (UINT32_MAX - 1)   /* a client whose user is not known */
#define VRAM__HTTP_DEFAULT_ADDR "127.0.0.1:7860"
#define VRAM__HTTP_MAX_BODY (64 * 1024) /* bytes of a POST body; more is 413 */
#define VRAM__HTTP_STREAMS_PER_CLIENT 8 /* live /api/stream of one client (address, or local user); more is 503 */
#define VRAM__HTTP_TICK_MS 1000         /* a stream's heartbeat, and the chart's refresh */

typedef struct vram__http vram__http;

/*
 * Listens on addr_port (NULL: 127.0.0.1:7860; port 0 picks a free one) and
 * serves from threads of its own until vram__http_stop.  token (copied) is
 * what changes must carry as "Authorization: Bearer TOKEN"; NULL or ""
 * refuses every change (403).  The provider table is copied; p->user must outlive the
 * server.  VRAM_EINVAL for a bad address or a provider with a NULL member,
 * VRAM_EBUSY when the port is taken, VRAM_EPERM when binding is not
 * allowed, VRAM_EIO otherwise; each with a message naming the address.
 */
int vram__http_start(const char *addr_port, const char *token, const vram__http_provider *p,
                     vram__http **out);

/* Stops serving (open streams end within VRAM__HTTP_TICK_MS) and frees the
 * server; NULL is fine.  The provider is not called after it returns. */
void vram__http_stop(vram__http *h);

/* "http://127.0.0.1:7860/", with the port actually bound.  Borrowed for the
 * server's life. */
const char *vram__http_url(const vram__http *h);

/* The port actually bound. */
unsigned vram__http_port(const vram__http *h);

/* ---- the page's files (generated from web/ at build time) --------------- */

typedef struct vram__asset {
    const char *path;               /* "/app.js" */
    const char *content_type;       /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t size;
} vram__asset;

/* The embedded file served at path ("/" is "/index.html"), or NULL. */
const vram__asset *vram__web_asset_find(const char *path);

/* Embedded file number i (0-based), or NULL past the end. */
const vram__asset *vram__web_asset_at(size_t i);

/* ---- the device half of the provider (dashboard.c) ---------------------- */

/* Samples of the status document's "history": the last window_ms (0: five
 * minutes) in `points` buckets (0: 300), each bucket's largest usage. */
int vram__dashboard_status_json(vram_ctx *ctx, vram_monitor *mon, uint64_t window_ms,
                                unsigned points, char **json);

/* Fills m->simulated and the readable devices of m (one snapshot). */
int vram__dashboard_metrics_devices(vram_ctx *ctx, vram__metrics *m);

/* ---- the token (token.c) ------------------------------------------------ */

#define VRAM__TOKEN_LEN 64              /* hex digits: 32 random bytes */

/* Where the token lives: path itself when given, else the "token-file"
 * default ($XDG_RUNTIME_DIR/vram/http-token, else
 * $HOME/.local/state/vram/http-token). */
int vram__token_path(const char *path, char *buf, size_t cap);

/* Makes a new random token in token.  Returns 0 or VRAM_EIO. */
int vram__token_new(char token[VRAM__TOKEN_LEN + 1]);

/* Writes token to path (its folder created 0700) readable by this user
 * only (0600), replacing any old one atomically. */
int vram__token_write(const char *path, const char *token);

/* vram__token_new, then vram__token_write. */
int vram__token_create(const char *path, char token[VRAM__TOKEN_LEN + 1]);

/* Reads the token at path.  VRAM_ENOENT when missing, VRAM_EPERM when
 * others may read it or another user owns it, VRAM_EPARSE when it is not
 * a token. */
int vram__token_read(const char *path, char token[VRAM__TOKEN_LEN + 1]);

/* 1 when given equals want, in time that does not depend on where they
 * differ. */
int vram__token_equal(const char *given, const char *want);

#endif /* VRAM_DAEMON_HTTP_H */
