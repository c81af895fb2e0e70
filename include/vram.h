/*
 * vram.h - the one public header of libvram.
 *
 * vram keeps AI video-generation work inside the GPU memory it has: it
 * measures every GPU and the host, predicts what a pipeline needs, plans
 * settings that fit, admits work only while it fits and recovers from
 * out-of-memory.  This header is the whole C contract; the `vram` command,
 * the daemon and the Python binding use nothing else.
 *
 * Conventions, true of every function below unless its comment says other:
 *   - Fallible functions return 0 or a negative VRAM_E* code; results go
 *     through out-parameters, which are cleared (pointers set to NULL) on
 *     failure.  vram_last_error() then says what was wrong, in words.
 *   - Byte counts are uint64_t bytes; durations carry their unit in the name.
 *   - Inputs are borrowed for the call.  Whatever the library returns through
 *     a pointer-to-pointer is released with the matching _free/_close, or
 *     with vram_free() where the comment says so.
 *   - The library never aborts or exits, and never writes to stdout.
 */
#ifndef VRAM_H
#define VRAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VRAM_BUILDING_LIBRARY)
#define VRAM_API __attribute__((visibility("default")))
#else
#define VRAM_API
#endif

/* ------------------------------------------------------------------ */
/* Version                                                             */
/* ------------------------------------------------------------------ */

#define VRAM_VERSION_MAJOR 0
#define VRAM_VERSION_MINOR 1
#define VRAM_VERSION_PATCH 0
#define VRAM_VERSION_NUMBER \
    (VRAM_VERSION_MAJOR * 10000 + VRAM_VERSION_MINOR * 100 + VRAM_VERSION_PATCH)

/* "0.1.0" for the library actually loaded; compare with VRAM_VERSION_* to
 * detect a header/library mismatch.  Static string. */
VRAM_API const char *vram_version(void);
VRAM_API int vram_version_number(void);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* One list generates the codes, vram_errname() and vram_strerror().  Values
 * match -errno where one fits; domain errors are -4000 and below.  The socket
 * protocol and the Python binding carry the name, not the number. */
#define VRAM_ERROR_LIST(X)                                                   \
    X(NOMEM,     -12,   "out of host memory")                                \
    X(INVAL,     -22,   "invalid argument")                                  \
    X(BUSY,      -16,   "still in use")                                      \
    X(NODEV,     -19,   "no such device")                                    \
    X(NOENT,     -2,    "no such file or entry")                             \
    X(IO,        -5,    "input/output error")                                \
    X(NOTSUP,    -95,   "not supported by this backend")                     \
    X(AGAIN,     -11,   "try again")                                         \
    X(TIMEDOUT,  -110,  "timed out")                                         \
    X(CANCELED,  -125,  "canceled")                                          \
    X(RANGE,     -34,   "value out of range")                                \
    X(PERM,      -1,    "permission denied")                                 \
    X(INTERNAL,  -4000, "internal error")                                    \
    X(NOLIB,     -4001, "vendor library could not be loaded")                \
    X(BUDGET,    -4002, "request exceeds the memory budget")                 \
    X(OOM,       -4003, "out of device memory")                              \
    X(DRIVER,    -4004, "the GPU driver reported an error")                  \
    X(NOFIT,     -4005, "nothing fits the memory available")                 \
    X(SHUTDOWN,  -4006, "already shut down")                                 \
    X(PARSE,     -4007, "malformed input")

enum {
    VRAM_OK = 0,
#define VRAM__ERROR_ENUM(name, value, text) VRAM_E##name = (value),
    VRAM_ERROR_LIST(VRAM__ERROR_ENUM)
#undef VRAM__ERROR_ENUM
};

/* "VRAM_EINVAL" for VRAM_EINVAL, "VRAM_OK" for 0, "VRAM_E?" otherwise.
 * Never NULL; static string. */
VRAM_API const char *vram_errname(int err);

/* A sentence for the code ("invalid argument").  Never NULL; static. */
VRAM_API const char *vram_strerror(int err);

/* What the last failing call on this thread said about its failure, e.g.
 * "'12XB' is not a size: unknown unit 'XB' (use B, K, M, G, T, KiB..TiB,
 * KB..TB)".  Empty string when nothing failed yet.  Borrowed: valid until the
 * next failing call on this thread. */
VRAM_API const char *vram_last_error(void);

/* Releases memory the library returned and the header says to free this way
 * (JSON strings, tables).  NULL is fine. */
VRAM_API void vram_free(void *p);

/* ------------------------------------------------------------------ */
/* Sizes                                                               */
/* ------------------------------------------------------------------ */

/* Parses a size a person typed: a plain number of bytes ("1048576") or a
 * number with a unit: K, M, G, T and KiB, MiB, GiB, TiB are powers of 1024;
 * KB, MB, GB, TB are powers of 1000; B is bytes.  Decimals are fine
 * ("1.5GiB"), case of the unit is not significant, space before the unit is
 * allowed.  Negative, empty, non-finite and over 2^64-1 are refused with
 * VRAM_EINVAL or VRAM_ERANGE and a message naming the text. */
VRAM_API int vram_size_parse(const char *text, uint64_t *bytes_out);

/* Writes bytes the way every vram output shows them: "23.4 GiB", "512.0 MiB",
 * "16 B".  Returns the length written (truncated to cap-1), like snprintf. */
VRAM_API int vram_size_format(uint64_t bytes, char *buf, size_t cap);

/* Parses a duration: "100ms", "0.5s", "2m", "1h", or a bare number counted
 * in bare_unit_ms (1: milliseconds, 1000: seconds).  Negative, malformed and
 * over a year are refused with a message naming the text. */
VRAM_API int vram_duration_parse(const char *text, unsigned bare_unit_ms, uint64_t *ms_out);

/* A margin is either a percent of total ("10%", "2.5%") or a size ("2GiB").
 * Exactly one of *percent_out (0..100) and *bytes_out is meaningful, as
 * *is_percent_out says.  Over 100% is refused. */
VRAM_API int vram_margin_parse(const char *text, double *percent_out,
                               uint64_t *bytes_out, int *is_percent_out);

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

/* One table of settings, each read from the environment as VRAM_<NAME> and
 * from the command line as --<name> (the flag wins).  See `vram --help` or
 * vram_option_describe() for the list. */
typedef struct vram_options vram_options;

/* A fresh set holding every option's default.  Free with vram_options_free. */
VRAM_API int vram_options_new(vram_options **out);
VRAM_API void vram_options_free(vram_options *opts);

/* Sets one option by its name ("margin", "sim", ...) after checking the
 * value.  VRAM_ENOENT for an unknown name, VRAM_EINVAL/VRAM_ERANGE for a bad
 * value; vram_last_error() names the value and what is accepted.  `source`
 * says where it came from in that message ("--margin", "VRAM_MARGIN"); NULL
 * means the option's flag name. */
VRAM_API int vram_options_set(vram_options *opts, const char *name,
                              const char *value, const char *source);

/* Reads every VRAM_<NAME> that is set in the environment.  Stops at the first
 * bad value and returns its error; options read before it stay set. */
VRAM_API int vram_options_load_env(vram_options *opts);

/* The current text of an option, or NULL for an unknown name.  Borrowed. */
VRAM_API const char *vram_options_get(const vram_options *opts,
                                      const char *name);

/* Describes option number `i` (0-based) for help screens.  Returns
 * VRAM_ENOENT past the end.  Strings are static. */
VRAM_API int vram_option_describe(unsigned i, const char **name_out,
                                  const char **default_out,
                                  const char **help_out);

/* ------------------------------------------------------------------ */
/* Context                                                             */
/* ------------------------------------------------------------------ */

/* A context owns a device backend and the settings it was opened with.  All
 * calls that take a ctx are safe from any thread. */
typedef struct vram_ctx vram_ctx;

/* Opens a context.  `opts` may be NULL: then the defaults and the
 * environment are used, and a bad environment value is warned about once on
 * stderr and ignored (someone else's process is no place to fail).  With
 * `opts`, the options are used as given (copied).
 * Backend choice (option "backend"): "nvml" or "sim" force one; "auto" takes
 * nvml when it loads and finds a device, else sim with a notice saying why.
 * Returns VRAM_ENOLIB/VRAM_ENODEV/VRAM_EDRIVER when a forced nvml cannot be
 * used, VRAM_EINVAL for a bad sim spec. */
VRAM_API int vram_ctx_open(vram_ctx **out, const vram_options *opts);

/* Closes; NULL is fine.  Returns VRAM_EBUSY (and closes nothing) while a
 * monitor or scheduler opened on it is still alive. */
VRAM_API int vram_ctx_close(vram_ctx *ctx);

/* The options the context runs with.  Borrowed for the context's life. */
VRAM_API const vram_options *vram_ctx_options(const vram_ctx *ctx);

/* "nvml" or "sim".  Static string. */
VRAM_API const char *vram_ctx_backend(const vram_ctx *ctx);

/* 1 when the devices are simulated, not real cards. */
VRAM_API int vram_ctx_is_simulated(const vram_ctx *ctx);

/* Why the backend was chosen, e.g. "no NVIDIA driver: libnvidia-ml.so.1:
 * cannot open shared object file; using a simulated 24 GiB card".  Empty for
 * a plain nvml choice.  Borrowed for the context's life. */
VRAM_API const char *vram_ctx_notice(const vram_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Devices                                                             */
/* ------------------------------------------------------------------ */

#define VRAM_NAME_MAX 96

/* Bits of vram_device_info.have and vram_proc.have. */
enum {
    VRAM_HAVE_NAME     = 1u << 0,
    VRAM_HAVE_UUID     = 1u << 1,
    VRAM_HAVE_MEMORY   = 1u << 2,
    VRAM_HAVE_RESERVED = 1u << 3, /* driver-reserved reported apart from used */
    VRAM_HAVE_PROCS    = 1u << 4, /* the backend can list processes */
    VRAM_HAVE_PROC_MEM = 1u << 5  /* a process's bytes are known */
};

typedef struct vram_device_info {
    unsigned index;
    unsigned have;                  /* VRAM_HAVE_* */
    char name[VRAM_NAME_MAX];
    char uuid[VRAM_NAME_MAX];
    uint64_t total_bytes;
    uint64_t used_bytes;            /* allocated by processes and contexts */
    uint64_t free_bytes;
    uint64_t driver_reserved_bytes; /* set aside by driver/firmware; 0 unless
                                       VRAM_HAVE_RESERVED */
    unsigned memory_api;            /* nvml: 2 = nvmlDeviceGetMemoryInfo_v2,
                                       1 = the v1 call; 0 = not nvml */
} vram_device_info;

typedef struct vram_proc {
    uint32_t pid;
    unsigned device;                /* index of the device it uses */
    unsigned have;                  /* VRAM_HAVE_PROC_MEM when used_bytes known */
    uint64_t used_bytes;
    char name[64];                  /* command name from /proc, may be "" */
} vram_proc;

/* Number of devices the context's backend sees. */
VRAM_API int vram_device_count(vram_ctx *ctx, unsigned *count_out);

/* Fills *out with the state of device `idx` now.  VRAM_EINVAL (NULL out),
 * VRAM_ENODEV (bad idx), VRAM_EDRIVER (the driver failed the call). */
VRAM_API int vram_device_query(vram_ctx *ctx, unsigned idx,
                               vram_device_info *out);

/* Lists the processes using device `idx` into buf (capacity cap).  *count_out
 * is the number there are; when it exceeds cap, buf holds the first cap and
 * the call returns VRAM_ERANGE.  VRAM_ENOTSUP when the backend cannot list. */
VRAM_API int vram_device_processes(vram_ctx *ctx, unsigned idx, vram_proc *buf,
                                   size_t cap, size_t *count_out);

/* ------------------------------------------------------------------ */
/* Snapshot: devices and host at one moment                            */
/* ------------------------------------------------------------------ */

typedef struct vram_host_info {
    uint64_t ram_total_bytes;
    uint64_t ram_available_bytes;
    unsigned cpu_count;
    double load_1m, load_5m, load_15m;
    char disk_path[256];            /* the path whose filesystem is reported */
    uint64_t disk_total_bytes;
    uint64_t disk_free_bytes;       /* available to unprivileged users */
} vram_host_info;

typedef struct vram_device_snapshot {
    vram_device_info info;
    uint64_t leased_bytes;          /* reserved through vram leases (ours) */
    uint64_t others_bytes;          /* used that no lease explains */
    uint64_t margin_bytes;          /* the safety margin applied */
    uint64_t safe_available_bytes;  /* free - margin - leased not yet in use */
    size_t nprocs;
    vram_proc *procs;               /* nprocs entries, largest first */
    int procs_status;               /* 0, or why procs is empty (VRAM_ENOTSUP) */
    int error;                      /* 0, or why this device could not be read;
                                       the other fields are then zero */
    char error_text[256];           /* the message for error */
} vram_device_snapshot;

typedef struct vram_snapshot {
    uint64_t taken_unix_ms;
    const char *backend;            /* "nvml" or "sim", static */
    int simulated;
    const char *notice;             /* as vram_ctx_notice(); borrowed */
    unsigned ndevices;
    vram_device_snapshot *devices;
    vram_host_info host;
} vram_snapshot;

/* Takes a snapshot of every device and the host.  `disk_path` chooses the
 * filesystem whose free space is reported (NULL: the "disk" option).
 * A device that cannot be read is kept with its error set, so one lost GPU
 * does not hide the others; the call itself fails only when the devices
 * cannot be counted.  Free with vram_snapshot_free. */
VRAM_API int vram_snapshot_take(vram_ctx *ctx, const char *disk_path,
                                vram_snapshot **out);
VRAM_API void vram_snapshot_free(vram_snapshot *snap);

/* The snapshot as one JSON document (bytes as integers; the README documents
 * the fields).  Free *json_out with vram_free. */
VRAM_API int vram_snapshot_to_json(const vram_snapshot *snap, char **json_out);

/* ------------------------------------------------------------------ */
/* Simulated devices                                                   */
/* ------------------------------------------------------------------ */

/* On the sim backend with a shared state directory (option "sim_state"),
 * records that this process now holds `bytes` on simulated device `idx`, as
 * a program that really allocates would.  Every process opened on the same
 * spec and state directory sees it, until this process sets 0 or exits.
 * VRAM_EOOM when the device has less free than the increase asked for;
 * VRAM_ENOTSUP on a real backend or without a state directory. */
VRAM_API int vram_sim_set_usage(vram_ctx *ctx, unsigned idx, uint64_t bytes);

/* ------------------------------------------------------------------ */
/* Monitor: sampling, history, thresholds, stage marks, leak trend     */
/* ------------------------------------------------------------------ */

typedef struct vram_monitor vram_monitor;

/* One sample of one device. */
typedef struct vram_sample {
    uint64_t t_ms;                  /* milliseconds since the monitor started */
    uint64_t used_bytes;
    uint64_t free_bytes;
    uint64_t leased_bytes;
} vram_sample;

/* min/max/mean of each sample field over a window. */
typedef struct vram_window_stats {
    size_t count;
    uint64_t used_min, used_max;
    double used_mean;
    uint64_t free_min, free_max;
    double free_mean;
    uint64_t leased_min, leased_max;
    double leased_mean;
} vram_window_stats;

/* Called once each time a device's used memory crosses a threshold upward
 * (and, with rising = 0, when it falls back under it).  Runs on the sampler
 * thread: keep it short. */
typedef void (*vram_threshold_fn)(void *user, unsigned device,
                                  uint64_t level_bytes, uint64_t used_bytes,
                                  int rising);

/* Starts a sampler thread over every device of ctx.  interval_ms 0 takes the
 * "interval" option (default 100 ms); history_len 0 keeps 3000 samples per
 * device (5 minutes at 100 ms).  Memory use is fixed at start. */
VRAM_API int vram_monitor_start(vram_ctx *ctx, unsigned interval_ms,
                                size_t history_len, vram_monitor **out);

/* Stops the thread and frees the monitor; NULL is fine. */
VRAM_API void vram_monitor_stop(vram_monitor *m);

/* Samples every device once now, on the calling thread (also what the
 * thread does each interval).  Useful for tests and single-shot tools. */
VRAM_API int vram_monitor_sample_now(vram_monitor *m);

/* Copies up to cap most recent samples of `device`, oldest first, into buf;
 * *count_out is how many were copied. */
VRAM_API int vram_monitor_history(vram_monitor *m, unsigned device,
                                  vram_sample *buf, size_t cap,
                                  size_t *count_out);

/* The latest sample of `device` as a snapshot (budget fields filled, no
 * processes: procs NULL).  VRAM_EAGAIN before the first sample. */
VRAM_API int vram_monitor_latest(vram_monitor *m, unsigned device, vram_device_snapshot *out);

/* Statistics over the samples of the last window_ms (0: the whole ring). */
VRAM_API int vram_monitor_window(vram_monitor *m, unsigned device,
                                 uint64_t window_ms, vram_window_stats *out);

/* Adds a threshold on used memory: a byte level, or a percent of total when
 * is_percent (level is then 0..100).  Applies to every device. */
VRAM_API int vram_monitor_add_threshold(vram_monitor *m, double level,
                                        int is_percent, vram_threshold_fn fn,
                                        void *user);

/* Records the used memory of `device` now, under a stage name ("after audio
 * encoder").  The name is copied. */
VRAM_API int vram_monitor_mark(vram_monitor *m, unsigned device,
                               const char *stage);

/* The marks so far as a table with the delta between stages, one line each,
 * for people.  Free with vram_free. */
VRAM_API int vram_monitor_marks_text(vram_monitor *m, char **text_out);

/* Samples of one process's (or a whole process tree's) usage over time, for
 * leak checks: the bytes the device attributes to pid and its descendants. */
VRAM_API int vram_process_tree_usage(vram_ctx *ctx, uint32_t pid,
                                     uint64_t *bytes_out);

/* ------------------------------------------------------------------ */
/* Leak trend                                                          */
/* ------------------------------------------------------------------ */

typedef struct vram_trend {
    size_t n;                       /* samples used */
    double slope_bytes;             /* bytes per iteration (Theil-Sen) */
    double slope_low, slope_high;   /* 95% confidence interval of the slope */
    double growth_bytes;            /* slope * (n - 1) */
    double noise_bytes;             /* robust spread of the samples around the line */
    int leaking;                    /* 1: growing with confidence */
} vram_trend;

/* Robust slope of per-iteration samples (memory after each frame).  Noise
 * and one-off spikes do not make a leak: `leaking` needs the whole 95%
 * interval above zero, a total growth over twice the noise, and over
 * `min_growth_bytes` (0: 1 MiB).  At least 5 samples; VRAM_EINVAL
 * otherwise. */
VRAM_API int vram_trend_fit(const uint64_t *samples, size_t n,
                            uint64_t min_growth_bytes, vram_trend *out);

/* "growing 12.0 MiB per iteration over 40 iterations (95% CI 11.2 MiB ..
 * 12.9 MiB)" or "flat over 40 iterations (...)".  `unit` names one step
 * ("iteration", "frame", "sample"); NULL means "iteration".  Like snprintf. */
VRAM_API int vram_trend_describe(const vram_trend *t, const char *unit, char *buf, size_t cap);

/* ---- plan (src/plan) ---------------------------------------------- */

/* ---- sched (src/sched) -------------------------------------------- */

/* The one admission engine of vram.  A ledger keeps, per device, what vram
 * has reserved (leases, ours), what resident models hold, and what other
 * programs use (others: used memory no lease explains, learnt from the
 * monitor's samples).  Every request for memory, a worker-pool task or an
 * external lease (a `vram run` job, a daemon client), waits in the ledger's
 * one queue and is admitted by one policy:
 *   - higher priority first, first come first served within a priority;
 *   - a request starts on the device where it fits best (least room left);
 *   - when the first waiting request does not fit anywhere, it reserves the
 *     device where it can start soonest (from the expected ends of what
 *     runs there); a later request may start ahead of it only when it is
 *     expected to end before then, or fits in memory the blocked one will
 *     not need, or runs on another device (bounded backfill: it can never
 *     be starved).  Requests with no expected duration never jump ahead.
 *   - nothing is admitted that would push others + reserved past the safe
 *     capacity (total less the margin) of a device;
 *   - a request larger than every device's capacity is refused at once.
 * A release wakes the next request at once (condition variables, no
 * polling); what other programs free is seen at the next sample. */

#define VRAM_MAX_DEVICES 64
#define VRAM_DEVICE_ANY (-1)        /* a request that may run on any device */
#define VRAM_DEVICE_CPU (-2)        /* a task that ran on the CPU */
#define VRAM_WAIT_FOREVER (-1)

typedef struct vram_ledger vram_ledger;

typedef struct vram_ledger_config {
    unsigned interval_ms;           /* sampling of the devices; 0: the "interval"
                                       option (100 ms) */
    unsigned backfill_window;       /* waiting requests looked at per admission
                                       pass; 0: 256 */
    int no_backfill;                /* 1: strict FIFO, nothing passes a blocked
                                       request (for comparisons) */
} vram_ledger_config;

/* Opens the ledger of ctx: samples every device once, then keeps sampling
 * on a monitor thread of its own.  cfg may be NULL (defaults).  One ledger
 * per context (VRAM_EBUSY for a second); while it is open, snapshots of ctx
 * show its leases as ours.  Thread-safe, like everything below. */
VRAM_API int vram_ledger_open(vram_ctx *ctx, const vram_ledger_config *cfg,
                              vram_ledger **out);

/* Closes; NULL is fine.  VRAM_EBUSY (and closes nothing) while a scheduler,
 * a lease, a waiting request or a resident is still there.  Snapshots of
 * the context taken meanwhile on other threads are safe. */
VRAM_API int vram_ledger_close(vram_ledger *l);

/* Samples every device now, on the calling thread, and admits what fits. */
VRAM_API int vram_ledger_refresh(vram_ledger *l);

/* The monitor that samples for the ledger (stage marks, history).
 * Borrowed for the ledger's life. */
VRAM_API vram_monitor *vram_ledger_monitor(vram_ledger *l);

/* What the ledger counts on one device now. */
typedef struct vram_ledger_device {
    unsigned index;
    int sampled;                    /* 0 until a sample of the device succeeded */
    uint64_t total_bytes;
    uint64_t margin_bytes;
    uint64_t capacity_bytes;        /* total - margin: what may ever be admitted */
    uint64_t others_bytes;          /* used that no lease or resident explains */
    uint64_t leased_bytes;          /* granted leases (ours) */
    uint64_t resident_bytes;        /* resident models, loaded or being evicted */
    uint64_t evictable_bytes;       /* of those, idle and loaded */
    uint64_t available_bytes;       /* capacity - others - leased - resident */
    unsigned leases, residents, waiting;
} vram_ledger_device;

VRAM_API int vram_ledger_device_info(vram_ledger *l, unsigned device,
                                     vram_ledger_device *out);

/* What the ledger learnt about a class of tasks or jobs ("enhance",
 * "enhance#1" for its first ladder rung): every out-of-memory raises the
 * class's future estimates by the shortfall observed. */
typedef struct vram_class_info {
    uint64_t extra_bytes;           /* added to every estimate of the class */
    uint64_t mean_ms;               /* expected duration (moving mean), 0 unknown */
    uint64_t runs, ooms;
} vram_class_info;

/* VRAM_ENOENT when nothing is known of the class yet. */
VRAM_API int vram_ledger_class_info(vram_ledger *l, const char *task_class,
                                    vram_class_info *out);

/* ---- leases ---- */

typedef struct vram_lease_request {
    uint64_t bytes;                 /* > 0 */
    int device;                     /* VRAM_DEVICE_ANY or an index */
    int priority;                   /* higher first; 0 is normal */
    int64_t wait_ms;                /* VRAM_WAIT_FOREVER, or how long to wait;
                                       0: only if it can start now */
    const char *holder;             /* who holds it ("job 17"); copied; NULL:
                                       "pid <this process>" */
    uint32_t pid;                   /* the process whose device memory the lease
                                       explains; 0: this process */
    uint64_t expected_ms;           /* how long it will be held, 0 unknown (a
                                       known duration lets others backfill) */
    const char *task_class;         /* learn estimates for this class; NULL: none */
} vram_lease_request;

typedef struct vram_lease_info {
    uint64_t id;
    unsigned device;
    uint64_t bytes;
    char holder[64];
    uint32_t pid;
    uint64_t held_ms;
} vram_lease_info;

/* Waits (up to req->wait_ms) until the request is admitted, then fills *out
 * (may be NULL) with the lease.  VRAM_EINVAL (0 bytes, NULL req),
 * VRAM_ENODEV (no such device), VRAM_ENOFIT (larger than every device's
 * capacity: the message gives both numbers), VRAM_ETIMEDOUT (not admitted in
 * time), VRAM_ECANCELED (the holder's requests were released meanwhile). */
VRAM_API int vram_lease_acquire(vram_ledger *l, const vram_lease_request *req,
                                vram_lease_info *out);

/* Called once per async request: status 0 with the lease, or the error the
 * blocking form would have returned (lease is then NULL).  Runs on whichever
 * thread admitted it, with no lock of the ledger held; keep it short. */
typedef void (*vram_lease_fn)(void *user, int status, const vram_lease_info *lease);

/* Queues the request and returns at once; fn tells the outcome.  *ticket_out
 * (may be NULL) is the lease id it will have, for vram_lease_cancel.
 * Refusals at submit (VRAM_EINVAL, VRAM_ENODEV, VRAM_ENOFIT) return here and
 * fn is never called. */
VRAM_API int vram_lease_acquire_async(vram_ledger *l, const vram_lease_request *req,
                                      vram_lease_fn fn, void *user,
                                      uint64_t *ticket_out);

/* Withdraws a waiting request (fn is then called with VRAM_ECANCELED).
 * VRAM_ENOENT when it is not waiting (admitted already, or unknown). */
VRAM_API int vram_lease_cancel(vram_ledger *l, uint64_t ticket);

/* Frees a lease.  VRAM_ENOENT when no lease has that id (never, or freed). */
VRAM_API int vram_lease_release(vram_ledger *l, uint64_t lease_id);

/* Lists the leases of `holder` (NULL: all) into buf; *count_out is how many
 * there are (VRAM_ERANGE when more than cap: buf holds the first cap). */
VRAM_API int vram_lease_list(vram_ledger *l, const char *holder, vram_lease_info *buf,
                             size_t cap, size_t *count_out);

/* Frees every lease of `holder` and cancels its waiting requests (as when
 * a client's socket closes).  *released_out (may be NULL): leases freed. */
VRAM_API int vram_lease_release_holder(vram_ledger *l, const char *holder,
                                       size_t *released_out);

/* ---- residents ---- */

typedef struct vram_resident vram_resident;

/* Unloads a resident model the ledger evicts (on the thread whose request
 * needed the room, with no ledger lock held). */
typedef void (*vram_unload_fn)(void *user, const char *name, unsigned device,
                               uint64_t bytes);

/* Counts a model kept loaded on `device` (name copied).  Registering the
 * same name on the same device again returns the same resident (one more
 * registration to drop) and, when it had been evicted, counts it loaded
 * again.  unload may be NULL: the resident is then never evicted. */
VRAM_API int vram_resident_register(vram_ledger *l, const char *name, unsigned device,
                                    uint64_t bytes, vram_unload_fn unload, void *user,
                                    vram_resident **out);

/* Pins the resident while it is used (an in-use resident is never evicted)
 * and marks its use.  VRAM_ENOENT when it was evicted: load it and register
 * it again. */
VRAM_API int vram_resident_use(vram_resident *r);

/* Unpins; the resident is idle again, last used now. */
VRAM_API int vram_resident_done(vram_resident *r);

/* 1 when loaded, 0 when evicted. */
VRAM_API int vram_resident_loaded(const vram_resident *r);

/* Drops one registration; the last one stops counting it (without calling
 * unload: the owner unloads it) and frees r.  VRAM_EBUSY while pinned. */
VRAM_API int vram_resident_unregister(vram_resident *r);

/* ---- images: frame consistency ---- */

/* An image of 8-bit channels: 1 (gray), 2 (gray+alpha), 3 (RGB) or 4
 * (RGBA), rows `stride` bytes apart. */
typedef struct vram_image {
    uint32_t width, height, channels, stride;
    uint8_t *data;
} vram_image;

/* Resamples src to width x height x channels with a Lanczos-3 filter
 * (channels are converted first: gray <-> RGB, alpha added opaque or
 * dropped).  dst->data is new memory: free it with vram_free. */
VRAM_API int vram_image_resample(const vram_image *src, uint32_t width, uint32_t height,
                                 uint32_t channels, vram_image *dst);

/* ---- scheduler: a worker pool over the ledger ---- */

typedef struct vram_sched vram_sched;

/* What a task callback returns. */
enum { VRAM_TASK_OK = 0, VRAM_TASK_FAILED = 1, VRAM_TASK_OOM = 2 };

#define VRAM_RUNG_FALLBACK (-1)

/* One attempt of a task, as its callback sees it. */
typedef struct vram_task_call {
    uint64_t task_id;               /* submission order, from 0 */
    void *user;                     /* the task's user pointer */
    int device;                     /* where it runs: an index or VRAM_DEVICE_CPU */
    int rung;                       /* 0: the task's callback; k: ladder rung k;
                                       VRAM_RUNG_FALLBACK */
    uint64_t bytes;                 /* reserved for this attempt (0 on the CPU) */
    unsigned attempt;               /* 1 for the first */
    /* Set by the callback: */
    void *result;                   /* handed back by vram_sched_next */
    vram_image image;               /* an image result (data non-NULL), borrowed
                                       from result: checked against the first */
    uint64_t shortfall_bytes;       /* with VRAM_TASK_OOM, how many more bytes it
                                       needed if known (else 25% more is assumed) */
    char reason[160];               /* with VRAM_TASK_FAILED, why */
} vram_task_call;

/* Returns VRAM_TASK_OK, VRAM_TASK_FAILED or VRAM_TASK_OOM.  Runs on a worker
 * thread; several run at once. */
typedef int (*vram_task_fn)(vram_task_call *call);

/* A cheaper variant tried after an out-of-memory. */
typedef struct vram_rung {
    uint64_t bytes;                 /* > 0, at most the rung before */
    vram_task_fn fn;
} vram_rung;

typedef struct vram_task {
    vram_task_fn fn;                /* required */
    uint64_t bytes;                 /* estimate on any device, > 0 */
    const uint64_t *device_bytes;   /* optional, ndevice_bytes entries: the
                                       estimate on device i (0: `bytes`;
                                       UINT64_MAX: never on that device) */
    unsigned ndevice_bytes;
    const vram_rung *ladder;        /* optional, nrungs entries, copied */
    unsigned nrungs;
    vram_task_fn fallback;          /* optional: makes the result when the task
                                       failed or ran out of rungs (no device) */
    const char *task_class;         /* copied; what the ledger learns under.
                                       NULL: one class per callback function */
    int device;                     /* VRAM_DEVICE_ANY or an index */
    int priority;                   /* higher first */
    int cpu_ok;                     /* may run on the CPU when no device can
                                       take it within wait_ms */
    int64_t wait_ms;                /* VRAM_WAIT_FOREVER (-1) or a limit */
    uint64_t expected_ms;           /* how long one attempt takes, 0: learn */
    vram_resident *resident;        /* optional: a model the task uses, pinned
                                       while it runs (on its device) */
    void *user;
    void (*free_result)(void *result);  /* optional: frees a result that was
                                       never collected when the scheduler closes */
} vram_task;

/* How a task ended. */
enum {
    VRAM_OUTCOME_DONE = 0,          /* its callback or a ladder rung made the result */
    VRAM_OUTCOME_FELL_BACK = 1,     /* the fallback made it */
    VRAM_OUTCOME_FAILED = 2,        /* no result */
    VRAM_OUTCOME_CANCELED = 3       /* canceled at shutdown before it started */
};

typedef struct vram_outcome {
    uint64_t task_id;
    int status;                     /* VRAM_OUTCOME_* */
    int error;                      /* the vram error behind a failure (VRAM_EOOM,
                                       VRAM_ETIMEDOUT, ...), else 0 */
    char reason[160];               /* why it failed or fell back, for people */
    int device;                     /* last device (or VRAM_DEVICE_CPU); -1: none */
    int rung;                       /* the rung that made the result, or
                                       VRAM_RUNG_FALLBACK */
    unsigned ooms;                  /* out-of-memory events on the way */
    unsigned attempts;
    uint64_t bytes;                 /* reserved for the last attempt */
    uint64_t wait_ms, run_ms;       /* queued in all, and the last attempt */
    uint64_t freed_bytes;           /* by the cleanup hooks, as the device saw it */
    void *result;                   /* the caller's now */
    vram_image image;               /* image result, after the consistency check */
    int resampled;                  /* 1: image.data is a resampled copy, free it
                                       with vram_free */
} vram_outcome;

/* One list makes the counters, their JSON and the Python dict agree. */
#define VRAM_SCHED_COUNTERS(X)                                               \
    X(submitted, "tasks accepted")                                           \
    X(queued, "waiting for memory or a worker")                              \
    X(running, "callbacks running now")                                      \
    X(done, "ended with a result of their own or of a rung")                 \
    X(retried, "out-of-memory retries on a cheaper rung")                    \
    X(fell_back, "ended with the fallback's result")                         \
    X(failed, "ended without a result")                                      \
    X(canceled, "canceled at shutdown")                                      \
    X(on_cpu, "attempts run on the CPU")                                     \
    X(resampled, "image results resampled to the first frame")               \
    X(cleanup_freed_bytes, "bytes the cleanup hooks freed, as devices saw it")

typedef struct vram_sched_stats {
#define VRAM__STATS_FIELD(name, text) uint64_t name;
    VRAM_SCHED_COUNTERS(VRAM__STATS_FIELD)
#undef VRAM__STATS_FIELD
    unsigned ndevices;
    uint64_t reserved_bytes[VRAM_MAX_DEVICES];  /* leased on each device now */
} vram_sched_stats;

/* Called after every task ends, never twice at once, on a worker thread. */
typedef void (*vram_progress_fn)(void *user, const vram_sched_stats *stats);

/* Runs after every attempt (before a retry, after a task ends), on the
 * worker thread, e.g. to empty a framework's cache.  `device` is where the
 * attempt ran (VRAM_DEVICE_CPU too). */
typedef void (*vram_cleanup_fn)(void *user, int device);

typedef struct vram_sched_config {
    unsigned workers;               /* worker threads; 0: one per CPU */
    vram_progress_fn progress;      /* optional */
    void *progress_user;
} vram_sched_config;

/* Starts a worker pool whose tasks wait in l's queue.  cfg may be NULL. */
VRAM_API int vram_sched_open(vram_ledger *l, const vram_sched_config *cfg,
                             vram_sched **out);

/* Adds a cleanup hook; the bytes it frees show in outcomes and stats. */
VRAM_API int vram_sched_add_cleanup(vram_sched *s, vram_cleanup_fn fn, void *user);

/* Queues a task (the spec is copied).  *id_out (may be NULL): its id, the
 * submission order.  VRAM_EINVAL (NULL callback, 0 bytes, a ladder rung
 * without callback, of 0 bytes or larger than the one before), VRAM_ENODEV,
 * VRAM_ENOFIT (larger than every device's capacity and not cpu_ok; the
 * message gives both numbers), VRAM_ESHUTDOWN (after shutdown). */
VRAM_API int vram_sched_submit(vram_sched *s, const vram_task *task, uint64_t *id_out);

/* The outcome of the next task in submission order, whatever order they
 * ended in, waiting up to wait_ms (VRAM_WAIT_FOREVER) for it.  Image results
 * with another size or channel count than the first image are resampled to
 * it (counted).  VRAM_EAGAIN/VRAM_ETIMEDOUT when it has not ended in time,
 * VRAM_ENOENT when every task was collected and the scheduler is shut down
 * (or nothing is submitted and wait_ms is 0). */
VRAM_API int vram_sched_next(vram_sched *s, int64_t wait_ms, vram_outcome *out);

VRAM_API int vram_sched_get_stats(vram_sched *s, vram_sched_stats *out);

/* The stats as JSON, one key per counter plus "reserved_bytes": [...].
 * Free with vram_free. */
VRAM_API int vram_sched_stats_json(vram_sched *s, char **json_out);

/* Stops taking tasks (submit then returns VRAM_ESHUTDOWN) and waits until
 * every task has ended.  cancel_queued: tasks not started yet end as
 * VRAM_OUTCOME_CANCELED; else they all run.  Outcomes stay collectable. */
VRAM_API int vram_sched_shutdown(vram_sched *s, int cancel_queued);

/* Shuts down (canceling what has not started), passes results never
 * collected to their free_result, stops the workers and frees.  NULL is
 * fine.  Call it when no other thread is in a call on s. */
VRAM_API int vram_sched_close(vram_sched *s);

/* "done", "fell back", "failed", "canceled".  Static. */
VRAM_API const char *vram_outcome_name(int status);

/* ---- runner (src/runner) ------------------------------------------ */

/* ---- daemon (src/daemon) ------------------------------------------ */

#ifdef __cplusplus
}
#endif
#endif /* VRAM_H */
