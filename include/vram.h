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
    X(NOSPC,     -28,   "no space left on device")                           \
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

/* For simulated devices, why: "not real cards; no NVIDIA driver:
 * libnvidia-ml.so.1: cannot open shared object file" or "not real cards;
 * the sim backend was asked for".  Empty on nvml.  Borrowed for the
 * context's life. */
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
    uint64_t others_bytes;          /* used that no lease explains (ours vs. others) */
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

/* The GPU memory of every process in process group pgid, on all devices
 * (a job started in its own group: its grandchildren stay in the group
 * even when their parent exits). */
VRAM_API int vram_process_group_usage(vram_ctx *ctx, uint32_t pgid, uint64_t *bytes_out);

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

/* ---- runner (src/runner) ------------------------------------------ */

/* ---- ladders ---- */

#define VRAM_LADDER_MAX_RUNGS 16
#define VRAM_RUNG_MAX_KEYS 24

typedef struct vram_kv {
    char key[32];
    char value[128];
} vram_kv;

/* One rung: settings, and optionally the memory budget it needs. */
typedef struct vram_rung {
    size_t nkv;
    vram_kv kv[VRAM_RUNG_MAX_KEYS];
    uint64_t vram_bytes;            /* vram=SIZE on the rung; 0 when not given */
} vram_rung;

typedef struct vram_ladder {
    size_t nrungs;
    vram_rung rungs[VRAM_LADDER_MAX_RUNGS];
} vram_ladder;

/* Parses "k=v k=v; k=v; ..." (rungs separated by ';', each a list of
 * key=value; vram=SIZE gives that rung's budget).  The first rung is the
 * first attempt; each later rung keeps the settings of the one before and
 * overrides what it names.  Refused: empty rungs, malformed pairs, a key
 * given twice in a rung, and budgets that do not get smaller from rung to
 * rung (when given, every rung must give one). */
VRAM_API int vram_ladder_parse(const char *text, vram_ladder *out);

/* The value of key on rung i (with inheritance), or NULL. */
VRAM_API const char *vram_ladder_get(const vram_ladder *l, size_t rung, const char *key);

/* Replaces every {key} in text with its value from kv (n pairs); "{{" and
 * "}}" stand for braces.  A {key} with no value is refused, naming it and
 * the keys there are.  Free *out with vram_free. */
VRAM_API int vram_template_expand(const char *text, const vram_kv *kv, size_t n, char **out);

/* ---- run history ---- */

/* Where the history lives: the "history" option (VRAM_HISTORY), else
 * $XDG_STATE_HOME/vram/history.db, else ~/.local/state/vram/history.db. */
typedef struct vram_history vram_history;

/* One point of a job's memory timeline. */
typedef struct vram_point {
    uint64_t t_ms;                  /* since the run started */
    uint64_t bytes;                 /* the job's process tree on its device */
} vram_point;

/* One attempt of one job, as recorded. */
typedef struct vram_run_record {
    int64_t id;                     /* set by vram_history_add */
    char job[40];                   /* the attempts of one `vram run` share it */
    unsigned attempt;               /* 1, 2, ... (the rung climbed to) */
    uint64_t started_unix_ms;
    uint64_t duration_ms;
    const char *command;            /* as run, after substitution */
    const char *profile;            /* "" when sized by --vram */
    const char *settings;           /* a JSON object, "{}" for none */
    int device;                     /* -1 for none */
    uint64_t estimate_bytes;        /* what it was admitted with */
    uint64_t peak_bytes;            /* the most its process tree held */
    const char *outcome;            /* "ok", "failed", "oom", "signal", "not-started", "canceled" */
    int exit_status;                /* exit status, or 128 + signal */
    uint64_t oom_tried_bytes;       /* what the failed allocation asked for */
    const char *note;               /* free text, "" for none */
    const vram_point *timeline;
    size_t ntimeline;
} vram_run_record;

/* Opens (creating it and its folder) the history at path, or at the
 * default place when path is NULL or "".  Free with vram_history_close. */
VRAM_API int vram_history_open(const char *path, vram_history **out);
VRAM_API void vram_history_close(vram_history *h);

/* The file it opened.  Borrowed for the history's life. */
VRAM_API const char *vram_history_path(const vram_history *h);

/* Records one attempt and its timeline in one transaction; sets rec->id.
 * VRAM_EBUSY when another program holds the database locked past two
 * seconds, VRAM_ENOSPC when the disk is full, VRAM_EIO otherwise; nothing
 * is half-written. */
VRAM_API int vram_history_add(vram_history *h, vram_run_record *rec);

/* The newest `limit` runs (0: 50), newest first; `job` (or NULL) keeps one
 * job's attempts.  *rows_out holds *count_out records (timelines not
 * loaded) whose strings live with the array; free it with
 * vram_history_rows_free. */
VRAM_API int vram_history_list(vram_history *h, unsigned limit, const char *job,
                               vram_run_record **rows_out, size_t *count_out);
VRAM_API void vram_history_rows_free(vram_run_record *rows, size_t count);

/* The newest `limit` runs (0: 50), newest first, as a JSON array; `job`
 * (or NULL) keeps one job's attempts.  Free with vram_free. */
VRAM_API int vram_history_json(vram_history *h, unsigned limit, const char *job, char **json_out);

/* Draws the memory timelines of the given runs (1 to 8) side by side as an
 * SVG document: seconds across, GiB up, one line per run, its estimate
 * dashed.  VRAM_ENOENT names a run that is not there.  Free with vram_free. */
VRAM_API int vram_history_report_svg(vram_history *h, const int64_t *ids, size_t n, char **svg_out);

/* ---- out-of-memory reports ---- */

/* What a program's output said about a GPU out-of-memory.  Fields the
 * message did not carry are 0 (gpu: -1). */
typedef struct vram_oom_report {
    int source;                     /* VRAM_OOM_PYTORCH, _PYTORCH_OLD, _DRIVER, _LIBRARY */
    int gpu;                        /* the device the message names, or -1 */
    uint64_t tried_bytes;           /* "Tried to allocate 2.00 GiB" */
    uint64_t total_bytes;           /* the device's capacity as the message says */
    uint64_t free_bytes;            /* free when it failed */
    uint64_t process_bytes;         /* "this process has N memory in use" */
    uint64_t allocated_bytes;       /* allocated by PyTorch */
    uint64_t reserved_bytes;        /* reserved by PyTorch (in total / unallocated) */
    char line[256];                 /* the line that said it, trimmed */
} vram_oom_report;

enum {
    VRAM_OOM_PYTORCH = 1,           /* torch >= 2.1: "... GPU 0 has a total capacity of" */
    VRAM_OOM_PYTORCH_OLD,           /* "(GPU 0; 6.00 GiB total capacity; ...)" */
    VRAM_OOM_DRIVER,                /* CUDA_ERROR_OUT_OF_MEMORY, cudaErrorMemoryAllocation, "CUDA error: out of memory" */
    VRAM_OOM_LIBRARY                /* CUBLAS/CUDNN ..._ALLOC_FAILED, HIP out of memory */
};

/* Looks for a GPU out-of-memory report in text (a program's stderr; len
 * bytes, need not be NUL-terminated).  Returns 1 and fills *out (the first
 * detailed report wins over a bare one) when there is one, 0 when there is
 * none, or a negative error for NULL arguments. */
VRAM_API int vram_oom_parse(const char *text, size_t len, vram_oom_report *out);

/* ---- daemon (src/daemon) ------------------------------------------ */

#ifdef __cplusplus
}
#endif
#endif /* VRAM_H */
