/* SPDX-License-Identifier: MIT */
/*
 * vram.h - the one public header of libvram.
 *
 * vram keeps AI video-generation work inside the GPU memory it has: it
 * measures every GPU and the host, predicts what a pipeline needs, plans
 * settings that fit, admits work only while it fits and recovers from
 * out-of-memory.  This header is the whole C contract.  (The `vram`
 * command and the Python binding also call renderers and internals the
 * library exports for them, declared in src/core/exports.h: not part of
 * the contract.)
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
 *   - Input structs that may grow (vram_task, vram_lease_request,
 *     vram_job_spec, vram_submit and the *_config structs) start with
 *     `unsigned version`.  Make them with their VRAM_*_INIT macro, which
 *     sets the version this header describes, and then set the fields you
 *     need.  A zeroed struct counts as version 1.  The library refuses
 *     (VRAM_EINVAL) a version newer than it knows, and gives the fields a
 *     caller's older version lacks their defaults.  Large structs are
 *     passed by pointer, never by value.
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
    X(PARSE,     -4007, "malformed input")                                   \
    X(LOST,      -4008, "the GPU is lost (fell off the bus or keeps failing)")

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

/* Parses a size a person typed: a plain number of bytes ("1048576"; under
 * 1 MiB a number alone is refused as a forgotten unit: "12") or a
 * number with a unit: K, M, G, T and KiB, MiB, GiB, TiB are powers of 1024;
 * KB, MB, GB, TB are powers of 1000; B is bytes.  Decimals are fine
 * ("1.5GiB"), case of the unit is not significant, space before the unit is
 * allowed.  Negative, empty, non-finite and over 2^64-1 are refused with
 * VRAM_EINVAL or VRAM_ERANGE and a message naming the text. */
VRAM_API int vram_size_parse(const char *text, uint64_t *bytes_out);

/* Writes bytes the way every vram output shows them: "23.4 GiB", "512.0 MiB",
 * "16 B".  Returns the length written (truncated to cap-1), like snprintf. */
VRAM_API int vram_size_format(uint64_t bytes, char *buf, size_t cap);

/* Copies text (NULL: "") into out, cap bytes, always terminated, with what
 * a terminal would act on made visible: control characters (C0, DEL, and
 * C1 whether as UTF-8 or as raw bytes) and invalid UTF-8 become \n, \r,
 * \t, \e or \xHH; valid UTF-8 text is kept.  Output is cut before an
 * escape or character that would not fit.  Every output of user text
 * (names, commands, messages) to a terminal goes through it.  Returns out.
 * Thread-safe. */
VRAM_API char *vram_text_escape(const char *text, char *out, size_t cap);

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
    VRAM_HAVE_PROC_MEM = 1u << 5, /* a process's bytes are known */
    VRAM_HAVE_MIG      = 1u << 6, /* the device is a MIG instance (uuid MIG-...) */
    VRAM_HAVE_PROC_FOREIGN = 1u << 7, /* the driver's pid is not in this /proc (a
                                         container without --pid=host) */
    VRAM_HAVE_UTIL     = 1u << 8, /* util_percent (NVML's utilization rates) */
    VRAM_HAVE_TEMP     = 1u << 9, /* temperature_c (the GPU die) */
    VRAM_HAVE_POWER    = 1u << 10 /* power_mw, and power_limit_mw when nonzero */
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
    /* Sensors, where the driver gives them (never on simulated cards):
     * each is valid only with its VRAM_HAVE_* bit. */
    unsigned util_percent;          /* of the last sample period the GPU was busy */
    int temperature_c;
    unsigned power_mw;              /* drawn now */
    unsigned power_limit_mw;        /* the enforced limit; 0 unknown */
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

/* The number N of device `idx`'s /dev/nvidiaN: what Slurm's GPU ids
 * (gres.conf's File=, SLURM_STEP_GPUS) count, which is not always the
 * device order (NVML's, the PCI bus order).  Of a MIG instance, its GPU's.
 * NVML's minor number, or the index where the driver does not say;
 * VRAM_ENOTSUP on simulated cards (no device files), VRAM_ENODEV (bad idx). */
VRAM_API int vram_device_minor(vram_ctx *ctx, unsigned idx, unsigned *minor_out);

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
    uint64_t capacity_bytes;        /* what admission may fill: total less
                                       driver-reserved less margin; 0 when lost */
} vram_device_snapshot;

typedef struct vram_snapshot {
    uint64_t taken_unix_ms;
    const char *backend;            /* "nvml" or "sim", static */
    int simulated;
    const char *notice;             /* as vram_ctx_notice(); borrowed */
    unsigned ndevices;
    vram_device_snapshot *devices;
    vram_host_info host;
    int from_daemon;                /* 1: vramd's view (its ledger counts every
                                       lease of the machine as ours); 0: this
                                       process's own ledger's */
} vram_snapshot;

/* Takes a snapshot of every device and the host.  `disk_path` chooses the
 * filesystem whose free space is reported (NULL: the "disk" option).
 * A device that cannot be read is kept with its error set, so one lost GPU
 * does not hide the others; the call itself fails only when the devices
 * cannot be counted.  Free with vram_snapshot_free. */
VRAM_API int vram_snapshot_take(vram_ctx *ctx, const char *disk_path,
                                vram_snapshot **out);
VRAM_API void vram_snapshot_free(vram_snapshot *snap);

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
 * device (5 minutes at 100 ms).  Memory use is fixed at start.  The first
 * sample is taken before it returns, the next one interval later. */
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

/* ---- plan (src/plan) ---------------------------------------------- */

/* A profile describes one pipeline: its components (weights, dtype, the
 * stages they run in), how each stage's activations grow with resolution,
 * frames, batch and guidance, fixed overheads, its tiers, its degradation
 * ladder, its optimizer levers and a time model.  Profiles are text files
 * (profiles/NAME.ini, format in the README) found in the folders of the
 * "profiles" option.
 *
 * Settings are "key=value" strings: resolution (1280x720, 720p, 512px),
 * width, height, frames or duration (with fps), steps, batch, cfg (on/off),
 * lora, precision (fp32|bf16|fp16|int8), memory (auto|beefy|lightweight|
 * sequential), vae_tiling, chunk, cpu, skip, audio, resident, tier.
 * vram_plan_setting_describe() lists them.  Settings not given take the
 * profile's defaults; a bad one is VRAM_EINVAL naming the value.
 *
 * A profile is immutable once loaded: every function that reads one may be
 * called from any thread at once. */
typedef struct vram_profile vram_profile;

/* Memory modes: where the weights live between stages. */
enum {
    VRAM_MEMORY_AUTO = 0,           /* the fastest of the three that fits */
    VRAM_MEMORY_BEEFY,              /* everything resident on the GPU */
    VRAM_MEMORY_LIGHTWEIGHT,        /* each component moved to the GPU for its stages */
    VRAM_MEMORY_SEQUENTIAL          /* weights streamed block by block */
};

/* Loads the profile called `name` from the folders of option "profiles"
 * (the first folder that has NAME.ini wins).  A name is never a path: one
 * holding '/' or "..", or ending in ".ini", is refused (VRAM_EINVAL).
 * opts may be NULL: defaults and the environment.  VRAM_ENOENT names the
 * model and lists the ones there are; VRAM_EPARSE says "file:line: what is
 * wrong".  Free with vram_profile_free. */
VRAM_API int vram_profile_load(const vram_options *opts, const char *name,
                               vram_profile **out);

/* Loads the profile file at `path`, for a caller that was given a file
 * (`--profile FILE`).  Errors as vram_profile_load. */
VRAM_API int vram_profile_load_file(const char *path, vram_profile **out);
VRAM_API void vram_profile_free(vram_profile *p);

/* Name, one-line title, and the file it was read from.  Borrowed for p's
 * life. */
VRAM_API const char *vram_profile_name(const vram_profile *p);
VRAM_API const char *vram_profile_title(const vram_profile *p);
VRAM_API const char *vram_profile_path(const vram_profile *p);

/* 1 when p is a calibrated copy written by vram_calibration_write. */
VRAM_API int vram_profile_is_calibrated(const vram_profile *p);

/* One profile found in the "profiles" folders. */
typedef struct vram_profile_entry {
    char name[32];
    char title[256];                /* "" when error is set */
    char path[4096];
    char shadows[4096];             /* a later file of the same name it hides, or "" */
    int calibrated;
    unsigned tiers;
    char error[512];                /* why the file does not load, or "" */
} vram_profile_entry;

/* The profiles the "profiles" folders hold, by folder then name; a name
 * found twice is listed once (the first wins).  *out holds *count_out
 * entries; free it with vram_free.  opts may be NULL. */
VRAM_API int vram_profile_list(const vram_options *opts, vram_profile_entry **out,
                               size_t *count_out);

/* Tiers, lowest first.  vram_profile_tier gives tier i's name (borrowed
 * for p's life; name_out may be NULL) and writes its settings as
 * "key=value key=value" into settings (cap bytes; settings may be NULL),
 * returning their length like snprintf.  VRAM_ENOENT past the end. */
VRAM_API size_t vram_profile_tier_count(const vram_profile *p);
VRAM_API int vram_profile_tier(const vram_profile *p, size_t i, const char **name_out,
                               char *settings, size_t cap);

/* The degradation ladder: rung i's changes as "key=value key=value" (each
 * rung keeps the ones before it).  Like snprintf: returns the length the
 * text needs.  VRAM_ENOENT past the last rung. */
VRAM_API size_t vram_profile_ladder_count(const vram_profile *p);
VRAM_API int vram_profile_ladder_rung(const vram_profile *p, size_t i, char *buf, size_t cap);

/* ---- estimate ---- */

/* What a run needs: peak GPU bytes and what makes it, host RAM, time. */
typedef struct vram_estimate {
    int memory;                     /* the mode estimated (never AUTO) */
    uint64_t peak_bytes;            /* weights + activations + overhead + margin */
    uint64_t weights_bytes;         /* weights on the GPU at the peak, LoRA included */
    uint64_t activation_bytes;      /* the peak stage's activations */
    uint64_t overhead_bytes;        /* CUDA context and allocator slack */
    uint64_t margin_bytes;          /* the profile's safety margin on the rest */
    uint64_t host_bytes;            /* host RAM for offloaded, pinned and staged weights */
    double seconds;                 /* on the profile's reference card */
    char peak_stage[32];            /* the stage where the peak falls */
} vram_estimate;

/* Estimates profile p at settings (n "key=value"; settings may be NULL when
 * n is 0): the profile's defaults, then the settings of the tier tier=NAME
 * names (no tier is picked without one), then the rest, read the same way
 * as vram_plan_make, vram_optimize and vram_calibrate read them.
 * memory=auto takes the fastest mode whose peak is at most budget_bytes
 * (0: no budget, beefy); when none fits it returns the smallest with
 * VRAM_ENOFIT.  VRAM_EINVAL for a bad setting or a tier p lacks (the
 * message lists its tiers), VRAM_ERANGE when a figure passes 64-bit bytes;
 * the message names the values. */
VRAM_API int vram_estimate_run(const vram_profile *p, const char *const *settings, size_t n,
                               uint64_t budget_bytes, vram_estimate *out);

/* Estimates in each of beefy, lightweight and sequential (out[0..2]), the
 * rest as vram_estimate_run. */
VRAM_API int vram_estimate_modes(const vram_profile *p, const char *const *settings, size_t n,
                                 vram_estimate out[3]);

/* ---- plan: tier, memory mode, allocator, placement ---- */

/* A plan holds a copy of what it needs from the profile: it outlives the
 * profile it was made from.  Once made it is read-only: its getters may be
 * called from any thread at once. */
typedef struct vram_plan vram_plan;

/* Plans a run of p: the highest tier whose estimate fits the budget (tiers
 * fill in the settings the caller did not give), the fastest memory mode
 * that fits, the PYTORCH_CUDA_ALLOC_CONF for the budget, and accelerate's
 * max_memory and device map.  budget_bytes 0 means the safe available
 * memory of `device` now (ctx required then; else ctx may be NULL).  A
 * tier is forced by the setting tier=NAME or, failing that, by ctx's option
 * "mode" (VRAM_MODE); a forced tier that does not fit is refused with
 * VRAM_ENOFIT and the numbers.  VRAM_ENOFIT also when nothing fits (the
 * message gives the smallest peak); VRAM_EINVAL for a bad setting or an
 * unknown tier, VRAM_ENODEV for a device that is not there.  p is borrowed
 * for the call.  Thread-safe.  Free with vram_plan_free (NULL is fine). */
VRAM_API int vram_plan_make(vram_ctx *ctx, const vram_profile *p, const char *const *settings,
                            size_t nsettings, uint64_t budget_bytes, unsigned device,
                            vram_plan **out);
VRAM_API void vram_plan_free(vram_plan *plan);

/* The chosen tier ("" when the profile has none), and why that tier and
 * mode, e.g. "balanced needs 12.2 GiB at the least (sequential), over the
 * 10.0 GiB budget; beefy needs 47.6 GiB, lightweight needs 29.8 GiB, 10.0
 * GiB budget: sequential, 8.7 GiB".  Borrowed for the plan's life; "" for
 * a NULL plan. */
VRAM_API const char *vram_plan_tier(const vram_plan *plan);
VRAM_API const char *vram_plan_why(const vram_plan *plan);

/* The budget planned for. */
VRAM_API uint64_t vram_plan_budget(const vram_plan *plan);

/* The value of one planned setting as text ("1280x720", "40", "on"), to put
 * into a command line's {key}; NULL for an unknown key.  Borrowed for the
 * plan's life. */
VRAM_API const char *vram_plan_param(const vram_plan *plan, const char *key);

/* Setting i (0-based, every key) as key and value; VRAM_ENOENT past the
 * end.  Borrowed for the plan's life. */
VRAM_API int vram_plan_param_at(const vram_plan *plan, size_t i, const char **key_out,
                                const char **value_out);

/* The plan's settings as its pipeline's own command line, from the
 * profile's [args] section (what `{args}` in a `vram run` command becomes):
 * word i (0-based), or NULL past the last.  vram_plan_has_args is 0 when
 * the profile has no [args] section.  Borrowed for the plan's life. */
VRAM_API int vram_plan_has_args(const vram_plan *plan);
VRAM_API const char *vram_plan_arg(const vram_plan *plan, size_t i);

/* The estimate in the chosen mode.  VRAM_EINVAL for NULL arguments. */
VRAM_API int vram_plan_estimate(const vram_plan *plan, vram_estimate *out);

/* The PYTORCH_CUDA_ALLOC_CONF value for the plan's budget and the PyTorch
 * of its profile (`torch` key) or, when it does not say, the probed one
 * (vram_torch_version); without the device's total, so no memory fraction.
 * Borrowed. */
VRAM_API const char *vram_plan_alloc_conf(const vram_plan *plan);

/* The PyTorch version the plan's profile documents ("1.12"), or "".
 * Borrowed. */
VRAM_API const char *vram_plan_torch_version(const vram_plan *plan);

/* The PYTORCH_CUDA_ALLOC_CONF value vram uses for a budget when the job's
 * PyTorch is unknown (taken as recent): "expandable_segments:True".  Static. */
VRAM_API const char *vram_alloc_conf_for(uint64_t budget_bytes);

/* PYTORCH_CUDA_ALLOC_CONF for a job given budget_bytes on a device of
 * device_total_bytes (0: unknown), whose CUDA context takes context_bytes
 * (0: 512 MiB), under PyTorch torch_version ("2.4.1+cu121", "1.12"; NULL or
 * "": unknown, taken as recent).  Only what that PyTorch accepts and acts
 * on: nothing before 1.10; max_split_size_mb for small budgets before 2.1
 * (2.0 and older refuse expandable_segments); expandable_segments from 2.1;
 * from 2.9 also per_process_memory_fraction (the budget less the context,
 * over the total) and garbage_collection_threshold, which acts only under
 * it.  Writes buf (cap bytes, may end up ""); 0, VRAM_EINVAL (NULL buf, a
 * version that is not one) or VRAM_ERANGE (buf too small). */
VRAM_API int vram_alloc_conf(uint64_t budget_bytes, uint64_t device_total_bytes,
                             uint64_t context_bytes, const char *torch_version, char *buf,
                             size_t cap);

/* The PyTorch a job started from here would import: VRAM_TORCH_VERSION when
 * set ("none": no PyTorch), else the torch-*.dist-info beside the python3 on
 * PATH (its venv or conda prefix), ~/.local, /usr/local or /usr, read from
 * the file system (Python is not started).  0 with the version in buf,
 * VRAM_ENOENT when none is found, VRAM_EINVAL for a bad VRAM_TORCH_VERSION. */
VRAM_API int vram_torch_version(char *buf, size_t cap);

/* A new plan one rung further down the profile's ladder (the plan's
 * settings with the next rung's changes, less any change that would raise
 * the peak; the tier stays).  VRAM_ENOENT
 * when the ladder is used up.  The new plan is made even when it does not
 * fit (the runner tries it anyway); vram_plan_fits says. */
VRAM_API int vram_plan_next_rung(const vram_plan *plan, vram_plan **out);
VRAM_API size_t vram_plan_rung(const vram_plan *plan);   /* 0: none applied yet */
VRAM_API int vram_plan_fits(const vram_plan *plan);

/* ---- optimizer ---- */

enum { VRAM_LEVEL_BASIC, VRAM_LEVEL_BALANCED, VRAM_LEVEL_MAXIMUM };

/* One suggested change, in the profile's lever order. */
typedef struct vram_suggestion {
    char parameter[32];             /* the setting ("resolution") */
    char from[64], to[64];          /* its values */
    int64_t saved_bytes;            /* peak before minus after this change */
    double seconds_change;          /* time after minus before (same output) */
    double quality_cost;            /* the profile's cost of the change */
    char reason[256];
} vram_suggestion;

typedef struct vram_optimization {
    int fits;                       /* 1: the suggestions make it fit */
    uint64_t budget_bytes;
    vram_estimate before, after;    /* after: with every suggestion */
    double quality_cost;            /* the sum over the suggestions */
    size_t nsuggestions;
    vram_suggestion suggestions[16];
    unsigned evaluated;             /* estimates the search made */
} vram_optimization;

/* Finds the cheapest change to settings that fits budget_bytes (and, when
 * max_seconds > 0, that time) using the profile's levers up to `level`:
 * the least total quality cost, then the least time.  Settings that fit
 * already give no suggestions.  When nothing fits, out->fits is 0 and
 * out->after is the smallest peak the levers reach (with its suggestions)
 * and the call returns VRAM_ENOFIT.  Answers in well under 10 ms for the
 * shipped profiles. */
VRAM_API int vram_optimize(const vram_profile *p, const char *const *settings, size_t n,
                           uint64_t budget_bytes, int level, double max_seconds,
                           vram_optimization *out);

/* ---- calibration ---- */

/* One observed run: its settings, its real peak and its wall time. */
typedef struct vram_measurement {
    const char *const *settings;    /* "key=value"; may be NULL when n is 0 */
    size_t nsettings;
    uint64_t peak_bytes;            /* 0: not measured */
    double seconds;                 /* <= 0: not measured */
} vram_measurement;

/* A calibration is read-only once made: any thread may read it. */
typedef struct vram_calibration vram_calibration;

/* How well one row is predicted, before and after the fit. */
typedef struct vram_calibration_row {
    uint64_t observed_bytes;        /* 0 when not measured */
    uint64_t before_bytes;          /* the profile's estimate, margin included */
    uint64_t fit_bytes;             /* the calibrated estimate without the margin */
    uint64_t after_bytes;           /* the calibrated estimate, margin included */
    double observed_s, before_s, after_s;
    double error_pct;               /* (fit - observed) / observed x 100; NAN: not measured */
    double error_s_pct;             /* (after_s - observed_s) / observed_s x 100; NAN: none */
} vram_calibration_row;

/* Fits p's activation coefficients (of the stage where each row peaks) and
 * its time coefficients to the rows by least squares on relative error,
 * keeping the profile's shape: a coefficient the profile leaves at zero
 * stays zero, and with fewer rows than coefficients one scale is fitted.
 * Rows are compared without the safety margin, which stays on top.  A
 * row's settings are read as vram_estimate_run reads them (tier=NAME
 * included), and it ran in the memory mode they name (auto counts as
 * beefy).  p
 * is not changed: the result holds a calibrated copy.  This is the function
 * the run history feeds.  VRAM_EINVAL (naming the row) for a bad setting or
 * no measurement at all.  Free with vram_calibration_free (NULL is fine). */
VRAM_API int vram_calibrate(const vram_profile *p, const vram_measurement *rows, size_t nrows,
                            vram_calibration **out);

/* The same, reading rows from a CSV file: a header naming setting keys
 * plus peak (a size) and seconds, then one run a line; '#' starts a
 * comment.  Errors say "file:line: what is wrong". */
VRAM_API int vram_calibrate_csv(const vram_profile *p, const char *csv_path,
                                vram_calibration **out);
VRAM_API void vram_calibration_free(vram_calibration *c);

/* The calibrated profile, borrowed for c's life. */
VRAM_API const vram_profile *vram_calibration_profile(const vram_calibration *c);

VRAM_API size_t vram_calibration_row_count(const vram_calibration *c);
VRAM_API int vram_calibration_get_row(const vram_calibration *c, size_t i,
                                      vram_calibration_row *out);

/* Median absolute relative error after the fit, memory and time (NAN when
 * no row measured it). */
VRAM_API void vram_calibration_median_error(const vram_calibration *c, double *bytes_pct,
                                            double *seconds_pct);

/* Writes the calibrated copy (the original text, coefficients replaced,
 * with a [calibration] section) to path, or, when path is NULL, to
 * NAME.ini in the first folder of option "profiles" when set, else
 * ~/.config/vram/profiles (created), where it is found before the shipped
 * one.  Never writes over the file the profile was read from, nor over a
 * file that is not a calibrated copy unless overwrite is 1.  The path
 * written goes to written (cap bytes) when written is not NULL. */
VRAM_API int vram_calibration_write(const vram_calibration *c, const vram_options *opts,
                                    const char *path, int overwrite, char *written, size_t cap);

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

#define VRAM_LEDGER_CONFIG_VERSION 1

typedef struct vram_ledger_config {
    unsigned version;               /* VRAM_LEDGER_CONFIG_VERSION (0 counts as 1) */
    unsigned interval_ms;           /* sampling of the devices; 0: the "interval"
                                       option (100 ms) */
    unsigned backfill_window;       /* shapes of waiting request (size, device,
                                       class, duration) looked at per admission
                                       pass, however many requests share one,
                                       and 16 requests per shape past the first
                                       blocked one; 0: 256 */
    int no_backfill;                /* 1: strict FIFO, nothing passes a blocked
                                       request (for comparisons) */
} vram_ledger_config;

#define VRAM_LEDGER_CONFIG_INIT { .version = VRAM_LEDGER_CONFIG_VERSION }

/* Opens the ledger of ctx: samples every device once, then keeps sampling
 * on a monitor thread of its own.  cfg may be NULL (defaults); VRAM_EINVAL
 * for a cfg->version newer than the library's.  One ledger
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

#define VRAM_LEASE_REQUEST_VERSION 1

typedef struct vram_lease_request {
    unsigned version;               /* VRAM_LEASE_REQUEST_VERSION (0 counts as 1) */
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
    uint32_t pgid;                  /* a process group whose device memory the
                                       lease explains too (a job started in its
                                       own group); 0: none */
    uint32_t flags;                 /* VRAM_LEASE_JOB: a queue's job, not a lease
                                       taken outside a queue (what a waiting
                                       request misses is then "Lease" only when
                                       such leases hold it) */
    const char **wait_reason;       /* optional: while the request waits, kept
                                       pointing (atomic stores; read it with
                                       __atomic_load_n) at why, as Slurm says it:
                                       "Resources" (the first in line; memory is
                                       short), "Lease" (the same, and leases hold
                                       what it misses), "Priority" (a request
                                       ahead of it comes first) or "Dependency"
                                       (it waits for a worker or an unload).
                                       Static strings; must stay valid until the
                                       request is granted, canceled or refused */
} vram_lease_request;

#define VRAM_LEASE_JOB 1u
#define VRAM_LEASE_REQUEST_INIT { .version = VRAM_LEASE_REQUEST_VERSION, .device = VRAM_DEVICE_ANY }

typedef struct vram_lease_info {
    uint64_t id;
    unsigned device;
    uint64_t bytes;
    char holder[64];                /* vram_client_leases: the name the client
                                       gave (cleaned text, never an identity),
                                       else its connection's */
    uint32_t pid;
    uint32_t uid;                   /* vram_client_leases: its client's uid, as
                                       the kernel told vramd (SO_PEERCRED);
                                       UINT32_MAX when unknown (a ledger of
                                       this process's: the caller's own).
                                       (Fills what was padding before.) */
    uint64_t held_ms;
    unsigned waiting;               /* vram_client_leases: 1 while the request
                                       waits for room (bytes: asked, held_ms:
                                       waited so far, device: meaningless) */
    char reason[16];                /* why it waits ("Resources", "Lease",
                                       "Priority", "Dependency"); "" if held */
} vram_lease_info;

/* Waits (up to req->wait_ms) until the request is admitted, then fills *out
 * (may be NULL) with the lease.  VRAM_EINVAL (0 bytes, NULL req, a
 * req->version newer than the library's),
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

/* Names who uses a granted lease's memory once that is known (a job's
 * command starts after its lease): the process pid (0: keep) and the
 * process group pgid (0: none).  VRAM_ENOENT when no lease has that id. */
VRAM_API int vram_lease_set_owner(vram_ledger *l, uint64_t lease_id, uint32_t pid, uint32_t pgid);

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

/* A rung of a ladder (see "ladders" below): a cheaper variant tried after
 * an out-of-memory, or when the rung before could not be admitted within
 * the task's wait. */
typedef struct vram_rung {
    uint64_t bytes;                 /* a task's rung: > 0, at most the rung before;
                                       a job's: its budget, 0 when not given */
    vram_task_fn fn;                /* a task's rung: its callback; a job's: NULL */
} vram_rung;

#define VRAM_TASK_VERSION 1

typedef struct vram_task {
    unsigned version;               /* VRAM_TASK_VERSION (0 counts as 1) */
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
    int64_t wait_ms;                /* VRAM_WAIT_FOREVER (-1) or a limit, per
                                       rung: a rung not admitted within it steps
                                       down to the next (a task with a cheaper
                                       rung waits at most a second for memory
                                       that others hold, even for ever); past
                                       the last, the CPU (cpu_ok) or the fallback */
    uint64_t expected_ms;           /* how long one attempt takes, 0: learn */
    vram_resident *resident;        /* optional: a model the task uses, pinned
                                       while it runs (on its device) */
    void *user;
    void (*free_result)(void *result);  /* optional: frees a result that was
                                       never collected when the scheduler closes */
} vram_task;

#define VRAM_TASK_INIT { .version = VRAM_TASK_VERSION, .device = VRAM_DEVICE_ANY, \
                         .wait_ms = VRAM_WAIT_FOREVER }

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
    uint64_t leased_bytes[VRAM_MAX_DEVICES];    /* leased on each device now */
} vram_sched_stats;

/* Called after every task ends, never twice at once, on a worker thread. */
typedef void (*vram_progress_fn)(void *user, const vram_sched_stats *stats);

/* Runs after every attempt (before a retry, after a task ends), on the
 * worker thread, e.g. to empty a framework's cache.  `device` is where the
 * attempt ran (VRAM_DEVICE_CPU too). */
typedef void (*vram_cleanup_fn)(void *user, int device);

#define VRAM_SCHED_CONFIG_VERSION 1

typedef struct vram_sched_config {
    unsigned version;               /* VRAM_SCHED_CONFIG_VERSION (0 counts as 1) */
    unsigned workers;               /* worker threads; 0: one per CPU */
    vram_progress_fn progress;      /* optional */
    void *progress_user;
} vram_sched_config;

#define VRAM_SCHED_CONFIG_INIT { .version = VRAM_SCHED_CONFIG_VERSION }

/* Starts a worker pool whose tasks wait in l's queue.  cfg may be NULL
 * (defaults); VRAM_EINVAL for a cfg->version newer than the library's. */
VRAM_API int vram_sched_open(vram_ledger *l, const vram_sched_config *cfg,
                             vram_sched **out);

/* Adds a cleanup hook; the bytes it frees show in outcomes and stats. */
VRAM_API int vram_sched_add_cleanup(vram_sched *s, vram_cleanup_fn fn, void *user);

/* Queues a task (the spec is copied).  *id_out (may be NULL): its id, the
 * submission order.  VRAM_EINVAL (a task->version newer than the
 * library's, NULL callback, 0 bytes, a ladder rung
 * without callback, of 0 bytes or larger than the one before), VRAM_ERANGE
 * (more than VRAM_LADDER_MAX_RUNGS rungs), VRAM_ENODEV,
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

/* ---- the admission engine in virtual time ---- */

/* One task of a trace for vram_sched_simulate. */
typedef struct vram_sim_task {
    uint64_t bytes;                 /* > 0, at most the capacity */
    uint64_t duration_ms;           /* how long it holds its memory, > 0 */
    uint64_t expected_ms;           /* what the engine is told of it; 0: unknown */
    int priority;                   /* higher first */
} vram_sim_task;

enum {
    VRAM_SIM_BACKFILL = 0,          /* vram: FIFO within a priority, best fit, EASY backfill */
    VRAM_SIM_NO_BACKFILL = 1,       /* the same engine, nothing passes a blocked request */
    VRAM_SIM_ONE_AT_A_TIME = 2      /* first come first served, one task at a time */
};

typedef struct vram_sim_result {
    uint64_t makespan_ms;           /* from the first start to the last end */
    uint64_t bound_ms;              /* the lower bound: memory-time over the
                                       capacity, or the longest task */
    uint64_t passes;                /* admission passes the engine made */
    unsigned most_at_once;          /* tasks running together, at the most */
} vram_sim_result;

/* Runs a trace (all tasks queued at time 0, in order) through the one
 * admission engine on one device of `capacity_bytes` to use, in virtual
 * time: each task holds its memory for its duration, and the engine is
 * asked again at every end.  `policy` is a VRAM_SIM_*; window 0 is the
 * default backfill window.  No thread, no sleep: 100,000 tasks take
 * seconds.  VRAM_EINVAL (bad task or policy), VRAM_ENOFIT (a task larger
 * than the capacity), VRAM_ERANGE (durations and expected times adding up
 * past 584 years, 2^64 ns), VRAM_ENOMEM. */
VRAM_API int vram_sched_simulate(const vram_sim_task *tasks, size_t n, uint64_t capacity_bytes,
                                 int policy, unsigned window, vram_sim_result *out);

/* ---- runner (src/runner) ------------------------------------------ */

/* ---- ladders ---- */

/*
 * One ladder type for all of vram: the cheaper variants of a job or a task,
 * tried one after another after an out-of-memory, or when a rung cannot be
 * admitted within its wait.  Rung 0 is the first attempt.  A rung is a
 * budget (vram_rung.bytes; 0 where a job's ladder gives none) and either a
 * callback (an in-process task's rung: vram_task.ladder is an array of
 * vram_rung) or the settings it changes (a job's rung: "batch=1
 * vram=3GiB"; each keeps the settings of the one before).  A job's ladder
 * comes from text (`vram run --ladder`, `vram submit --ladder`) or from a
 * model profile's [ladder] section; either way it is a vram_ladder, made on
 * the heap and freed with vram_ladder_free.  Every kind obeys one rule: a
 * rung never needs more memory than the rung before it.
 */
#define VRAM_LADDER_MAX_RUNGS 16
#define VRAM_RUNG_MAX_KEYS 24

typedef struct vram_kv {
    char key[32];
    char value[128];
} vram_kv;

typedef struct vram_ladder vram_ladder;

/* Parses "k=v k=v; k=v; ..." (rungs separated by ';', each a list of
 * key=value; vram=SIZE gives that rung's budget) into *out (free it with
 * vram_ladder_free; NULL on failure).  Refused: empty rungs, malformed
 * pairs, a key given twice in a rung, more than VRAM_LADDER_MAX_RUNGS
 * rungs, and budgets that do not get smaller from rung to rung (when given,
 * every rung must give one). */
VRAM_API int vram_ladder_parse(const char *text, vram_ladder **out);

/* The ladder of a model profile: rung 0 is the plan as made (no change),
 * then one rung per line of the profile's [ladder] section.  Its budgets
 * are the plans' (0 here): vram_job_run never lets a rung's plan ask for
 * more than the attempt before it.  Free with vram_ladder_free. */
VRAM_API int vram_ladder_from_profile(const vram_profile *p, vram_ladder **out);

/* NULL is fine. */
VRAM_API void vram_ladder_free(vram_ladder *l);

/* How many rungs (0 for NULL). */
VRAM_API size_t vram_ladder_count(const vram_ladder *l);

/* Rung i's budget and callback (bytes 0 where not given; fn NULL in a
 * job's ladder).  VRAM_ENOENT past the last rung. */
VRAM_API int vram_ladder_rung(const vram_ladder *l, size_t i, vram_rung *out);

/* The settings rung i names itself (not inherited): the j-th pair, or
 * VRAM_ENOENT past the last.  Strings borrowed for the ladder's life. */
VRAM_API int vram_ladder_setting(const vram_ladder *l, size_t i, size_t j, const char **key_out,
                                 const char **value_out);

/* The value of key on rung i (with inheritance), or NULL.  Borrowed. */
VRAM_API const char *vram_ladder_get(const vram_ladder *l, size_t rung, const char *key);

/* The budget of a job's first attempt, from the job's own (job_bytes, 0
 * when none) and its ladder's (l may be NULL).  The first rung is the first
 * attempt, so where both give one they must agree.  *out is 0 when neither
 * gives one. */
VRAM_API int vram_ladder_first_budget(const vram_ladder *l, uint64_t job_bytes, uint64_t *out);

/* For callers that only check a job's ladder text: parses it, checks it
 * against job_bytes as vram_ladder_first_budget does, and sets *first_out
 * (may be NULL) to the first attempt's budget.  NULL or "" is no ladder. */
VRAM_API int vram_ladder_check_text(const char *text, uint64_t job_bytes, uint64_t *first_out);

/* Refuses (VRAM_EINVAL) a rung after the first that would run the same
 * command again: every setting it changes is a key that argv (a
 * NULL-terminated command with {key} templates) never uses, and that
 * `profile` (may be NULL) does not plan with, and it gives no smaller
 * budget.  The message names the rung and the unused key(s). */
VRAM_API int vram_ladder_check_command(const vram_ladder *l, char *const *argv,
                                       const vram_profile *profile);

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
    uint64_t over_bytes;            /* the most it went past its budget under
                                       --enforce soft (0: never, or not soft) */
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

/* The runs of model profile `profile` that finished ("ok"), as calibration
 * rows for vram_calibrate: each run's recorded settings, its observed peak
 * and its seconds.  *rows_out (free with vram_history_measurements_free)
 * holds *count_out rows; VRAM_ENOENT when there is none. */
VRAM_API int vram_history_measurements(vram_history *h, const char *profile,
                                       vram_measurement **rows_out, size_t *count_out);
VRAM_API void vram_history_measurements_free(vram_measurement *rows, size_t count);

/* ---- running a job ---- */

/* Called with a line for the user (what is happening, and why: "out of
 * memory on rung 1 ...; retrying on rung 2: batch 8 -> 1").  No newline. */
typedef void (*vram_say_fn)(void *user, const char *line);

#define VRAM_JOB_SPEC_VERSION 2      /* 2: enforce */

typedef struct vram_job_spec {
    unsigned version;               /* VRAM_JOB_SPEC_VERSION (0 counts as 1) */
    char *const *argv;              /* the command, NULL-terminated; {key} is
                                       replaced by the rung's or plan's value */
    uint64_t vram_bytes;            /* the budget; 0 to size from `model` */
    const char *model;              /* a profile to plan from, or NULL */
    const char *const *settings;    /* "key=value", nsettings of them (planner
                                       settings and {key} values) */
    size_t nsettings;
    const char *ladder;             /* "k=v ...; k=v ..." or NULL: the profile's
                                       ladder with a model, else no retry */
    int device;                     /* -1: any */
    int64_t wait_ms;                /* admission wait, -1: forever */
    const char *history;            /* the history's path, NULL: the default,
                                       "-": do not record */
    const char *name;               /* the job's name in the history, or NULL */
    vram_say_fn say;                /* may be NULL */
    void *say_user;
    uint64_t time_limit_ms;         /* 0: none; else each attempt is stopped
                                       after it (SIGTERM to every process it
                                       started, SIGKILL 5 s later: Slurm's
                                       --time), outcome "timeout" */
    const char *enforce;            /* "hard", "soft", "off", or NULL:
                                       hard where the shim (libvram_shim.so) is installed */
} vram_job_spec;

#define VRAM_JOB_SPEC_INIT { .version = VRAM_JOB_SPEC_VERSION, .device = -1, .wait_ms = -1 }

typedef struct vram_job_result {
    int exit_status;                /* the last attempt's, or 128 + signal; 127:
                                       the command could not be run */
    unsigned attempts;
    char outcome[16];               /* "ok", "failed", "oom", "signal", "not-started",
                                       "canceled", "timeout" */
    uint64_t peak_bytes;            /* the most the job's processes held */
    int device;                     /* the last attempt's device, -1: none */
    char job[40];                   /* its name in the history */
    int64_t first_run, last_run;    /* history ids of its attempts (0: not recorded) */
    int record_error;               /* 0, or why the history could not be written
                                       (the job ran; only the record is missing) */
    char record_message[256];
    uint64_t over_bytes;            /* the most an attempt went past its budget (soft) */
} vram_job_result;

/* Runs a job to its end: sizes it (vram_bytes, or a plan from model), waits
 * for admission (through vramd when one answers at VRAM_SOCKET, else with
 * this process's own ledger), starts the command in a process group of its
 * own with CUDA_VISIBLE_DEVICES, PYTORCH_CUDA_ALLOC_CONF (unless set
 * already), VRAM_PLAN (JSON), VRAM_LEASE and VRAM_BUDGET_BYTES, passes its
 * output through, follows the memory of the whole group, and, when it dies
 * of a GPU out-of-memory, runs it again on the next rung of the ladder.
 * Every attempt is recorded in the history.  Returns 0 once the job ran
 * (whatever its exit status: see out), or VRAM_EINVAL (bad spec, ladder or
 * template, a spec->version newer than the library's), VRAM_ENOFIT (larger than any device), VRAM_ETIMEDOUT (not
 * admitted in time), VRAM_ECANCELED (interrupted while waiting).  Must be
 * the only thing reaping children in the process (it is a subreaper while
 * it runs). */
VRAM_API int vram_job_run(vram_ctx *ctx, const vram_job_spec *spec, vram_job_result *out);

/* Interrupts a vram_job_run in progress from a signal handler or another
 * thread: the job's processes get SIGTERM (then SIGKILL after 5 s) and the
 * run ends as "canceled".  Async-signal-safe. */
VRAM_API void vram_job_interrupt(void);

/* ---- out-of-memory reports ---- */

/* What a program's output said about a GPU out-of-memory.  Fields the
 * message did not carry are 0 (gpu: -1). */
typedef struct vram_oom_report {
    int source;                     /* VRAM_OOM_PYTORCH, _PYTORCH_OLD, _DRIVER, _LIBRARY, _FRAMEWORK */
    int gpu;                        /* the device the message names, or -1 */
    uint64_t tried_bytes;           /* "Tried to allocate 2.00 GiB" */
    uint64_t total_bytes;           /* the device's capacity as the message says */
    uint64_t free_bytes;            /* free when it failed */
    uint64_t process_bytes;         /* "this process has N memory in use" */
    uint64_t allocated_bytes;       /* allocated by PyTorch */
    uint64_t reserved_bytes;        /* reserved by PyTorch (in total / unallocated) */
    char line[256];                 /* the line that said it, trimmed */
    uint64_t allowed_bytes;         /* PyTorch under a memory fraction: "N allowed";
                                       then the room was allowed - reserved, not free */
    char pattern[24];               /* which entry of the table matched ("cudnn9") */
} vram_oom_report;

enum {
    VRAM_OOM_PYTORCH = 1,           /* torch >= 2.1: "... GPU 0 has a total capacity of" */
    VRAM_OOM_PYTORCH_OLD,           /* "(GPU 0; 6.00 GiB total capacity; ...)" */
    VRAM_OOM_DRIVER,                /* CUDA_ERROR_OUT_OF_MEMORY, cudaErrorMemoryAllocation, "CUDA error: out of memory" */
    VRAM_OOM_LIBRARY,               /* cuBLAS, cuDNN 8/9, cuFFT, cuSOLVER, NCCL, HIP */
    VRAM_OOM_FRAMEWORK              /* ONNX Runtime, TensorFlow, JAX/XLA */
};

/* Looks for a GPU out-of-memory report in text (a program's stderr; len
 * bytes, need not be NUL-terminated).  The verdict is the last failure's:
 * an out-of-memory the program handled, followed by another failure (a new
 * traceback, an exception line, a fatal error), is not the cause.  Within
 * the last failure a detailed report beats a bare mention.  Returns 1 and
 * fills *out when the last failure is an out-of-memory, 0 when it is not,
 * or a negative error for NULL arguments.  The one table of messages is in
 * src/runner/oom.c; the Python binding asks this function too. */
VRAM_API int vram_oom_parse(const char *text, size_t len, vram_oom_report *out);

/* ---- daemon (src/daemon) ------------------------------------------ */

/* ---- the daemon ---- */

#define VRAM_DAEMON_CONFIG_VERSION 1

typedef struct vram_daemon_config {
    unsigned version;               /* VRAM_DAEMON_CONFIG_VERSION (0 counts as 1) */
    const vram_options *opts;       /* socket, socket-group, db, http, token-file,
                                       history, backend, sim, margin, ... (NULL:
                                       defaults and the environment) */
    const char *runner;             /* the `vram` program that runs jobs (as
                                       `vram run --daemon-job N ...`); NULL: this
                                       process's own executable */
    int stop_fd;                    /* the daemon stops when this becomes readable
                                       (a pipe a signal handler writes to); -1: none */
    vram_say_fn say;                /* a line for the operator (started, listening,
                                       job N started/ended); may be NULL */
    void *say_user;
} vram_daemon_config;

#define VRAM_DAEMON_CONFIG_INIT { .version = VRAM_DAEMON_CONFIG_VERSION, .stop_fd = -1 }

/* Runs vramd until stop_fd is readable: recovers the queue (re-queues what
 * never started, adopts what still runs), listens on the socket and the
 * HTTP address, admits queued jobs through the one ledger and starts each
 * with the runner, in a session of its own so that jobs outlive the daemon.
 * Returns 0 after a clean stop, VRAM_EBUSY when a daemon already runs on
 * the socket, VRAM_EINVAL for a cfg->version newer than the library's, or
 * the error that kept it from starting. */
VRAM_API int vram_daemon_run(const vram_daemon_config *cfg);

/* ---- talking to the daemon ---- */

/* A connection to vramd over its Unix socket.  One thread at a time. */
typedef struct vram_client vram_client;

/* Connects to the daemon at socket_path, or (NULL) at VRAM_SOCKET, else
 * $XDG_RUNTIME_DIR/vram/vramd.sock, else ~/.local/state/vram/vramd.sock.
 * VRAM_ENOENT when no daemon answers there. */
VRAM_API int vram_client_open(const char *socket_path, vram_client **out);
VRAM_API void vram_client_close(vram_client *c);

/* The socket it is connected to.  Borrowed. */
VRAM_API const char *vram_client_socket(const vram_client *c);

/* A job to queue. */
#define VRAM_SUBMIT_VERSION 3        /* 2: key, time_limit_ms, enforce; 3: after, afterok, output */

typedef struct vram_submit {
    unsigned version;               /* VRAM_SUBMIT_VERSION (0 counts as 1) */
    const char *const *argv;        /* the command, NULL-terminated; {key} allowed */
    const char *const *env;         /* "KEY=value", NULL-terminated; NULL: ours */
    const char *cwd;                /* NULL: ours */
    uint64_t vram_bytes;            /* its budget, or 0 with model */
    const char *model;              /* a profile to size it from, or NULL */
    const char *const *settings;    /* "key=value", nsettings of them */
    size_t nsettings;
    const char *ladder;             /* "k=v; k=v ..." or NULL */
    int device;                     /* -1: any */
    int priority;                   /* -100..100, higher first */
    const char *name;               /* a label, or NULL */
    uint64_t time_ms;               /* its time limit (vram submit --time), also what backfill counts on:
                                       smaller jobs start past it while it waits
                                       only when they end in time.  0: the learnt
                                       duration of its model, if any */
    /* version 2: */
    const char *key;                /* an idempotency key (1-64 of A-Z a-z 0-9
                                       _ . : -), or NULL: a submit repeated with
                                       the same key by the same user queues
                                       nothing new and gets the first job's id */
    uint64_t time_limit_ms;         /* the same limit as time_ms, as trust's job
                                       spec names it; the larger of the two is sent */
    const char *enforce;            /* "hard", "soft", "off", or NULL: vram run's default */
    /* version 3: */
    const uint64_t *after;          /* jobs it starts after, whatever their end (nafter of them) */
    size_t nafter;
    const uint64_t *afterok;        /* jobs it starts after only if they succeeded; if one did
                                       not, it ends canceled, saying which (nafterok of them) */
    size_t nafterok;
    const char *output;             /* an absolute path its output (stdout and stderr) goes to,
                                       opened as its user; NULL: its log, for vram log */
} vram_submit;

#define VRAM_SUBMIT_INIT { .version = VRAM_SUBMIT_VERSION, .device = -1 }

/* Queues a job; *job_out is its id once it is on disk.  VRAM_EINVAL for
 * an s->version newer than the library's. */
VRAM_API int vram_client_submit(vram_client *c, const vram_submit *s, uint64_t *job_out);

/* Asks whether the daemon would queue s (it can be sized and some device, or
 * the one it names, can hold it) and queues nothing: 0, or the error
 * vram_client_submit would give.  A batch is checked row by row this way
 * before any of it is sent. */
VRAM_API int vram_client_check(vram_client *c, const vram_submit *s);

/* The daemon's view of every device and the host (its "status"
 * operation): the snapshot its ledger counts, so that every lease of the
 * machine, jobs' and clients' alike, is ours and what the daemon admits by
 * is the safe available shown; (*out)->from_daemon is 1.  Free with
 * vram_snapshot_free. */
VRAM_API int vram_client_snapshot(vram_client *c, vram_snapshot **out);

/* The leases clients hold through the daemon's socket (vram_client_lease,
 * the Python binding's vram.lease, the Slurm plugin), each with the pid of
 * the process that holds it (held_ms: how long) and the name its client gave
 * it (holder), then the requests still waiting for room (waiting: 1).  A
 * job's lease is not listed: its job is.
 * Copies up to cap into buf; *count_out is how many there are (VRAM_ERANGE
 * when more than cap). */
VRAM_API int vram_client_leases(vram_client *c, vram_lease_info *buf, size_t cap, size_t *count_out);

/* Cancels a queued or running job. */
VRAM_API int vram_client_cancel(vram_client *c, uint64_t job);

/* Reserves bytes through the daemon for as long as this connection lives
 * (or until released): device -1 for any; wait_ms -1 forever. */
VRAM_API int vram_client_lease(vram_client *c, uint64_t bytes, int device, int64_t wait_ms,
                               uint64_t *lease_out, unsigned *device_out);
VRAM_API int vram_client_release(vram_client *c, uint64_t lease);

/* A job as the daemon shows it.  Strings live with the list. */
typedef struct vram_job_info {
    uint64_t id;
    const char *name;
    const char *state;              /* queued, starting, running, succeeded, failed, canceled */
    const char *command;
    const char *model;
    const char *tier;               /* "" when none */
    uint64_t estimate_bytes, used_bytes, peak_bytes;
    double progress;                /* 0..1, or < 0 when unknown */
    int device;                     /* -1: none yet */
    unsigned attempt;
    int priority;
    uint64_t submitted_unix_ms, started_unix_ms, ended_unix_ms;   /* 0: not yet */
    const char *outcome;            /* "" until it ends */
    int exit_status;                /* -1 until it ends */
    const char *reason;             /* why it waits or failed, "" */
    const char *log;                /* where its runner's output goes */
    const char *user;               /* who submitted it: a name, "" when the system has none */
    uint32_t uid;                   /* and their uid */
} vram_job_info;

typedef struct vram_job_list {
    size_t count;
    vram_job_info *jobs;            /* running, starting, queued, then finished newest first */
    uint64_t queued, starting, running, succeeded, failed, canceled;   /* all the daemon has */
    /* Ends seen since the daemon started, by final state: unlike the counts
     * above, not lowered when the daemon forgets an old finished job, so two
     * lists' difference is exactly what ended between them (vram wait --all). */
    uint64_t ended_succeeded, ended_failed, ended_canceled;
    int have_ended;                 /* 0: a vramd older than those counts (all 0) */
} vram_job_list;

/* The daemon's jobs: `state` (NULL: all) and at most `limit` (0: all).
 * Free *out with vram_job_list_free. */
VRAM_API int vram_client_jobs(vram_client *c, const char *state, uint64_t limit, vram_job_list **out);

/* The daemon gives its list in pages (of at most 1,000 jobs), each costing
 * the same however long the queue: one page of at most `limit` jobs (0: a
 * whole page) after the cursor `after` (NULL or "": from the first job).
 * `next` (nextcap bytes, 48 are enough) gets the cursor to ask with for the
 * following page, or "" when there is none.  A list read in pages is not a
 * snapshot: a job that moves between pages may be missed or given twice. */
VRAM_API int vram_client_jobs_page(vram_client *c, const char *state, uint64_t limit, const char *after,
                                   vram_job_list **out, char *next, size_t nextcap);

/* Receives text as it is made; nonzero stops it (that value is returned). */
typedef int (*vram_text_sink)(void *user, const char *text, size_t len);

/* The list as one JSON object (`vram queue --json`): the first page's
 * "counts", "ended" and "leases" with every page's jobs in its "jobs" (not the
 * socket's "ok", "id" or "next"), handed to sink a piece at a time as the
 * pages come: memory stays that of a page. */
VRAM_API int vram_client_jobs_json(vram_client *c, const char *state, uint64_t limit, vram_text_sink sink,
                                   void *user);

/* One job (a list of one).  VRAM_ENOENT when the daemon has no such job. */
VRAM_API int vram_client_job(vram_client *c, uint64_t job, vram_job_list **out);
VRAM_API void vram_job_list_free(vram_job_list *l);

/* Job events.  After vram_client_subscribe the daemon tells this connection
 * of every change to a job (another user's as its summary only), so a
 * client waits for jobs without asking again and again.
 * vram_client_next_event waits up to timeout_ms (< 0: no limit) for the
 * next one and gives the id of the job that changed (*job_out);
 * VRAM_ETIMEDOUT when none came.  Requests still work on the connection:
 * an event that comes while one waits for its reply is dropped, the reply
 * being newer than it. */
VRAM_API int vram_client_subscribe(vram_client *c);
VRAM_API int vram_client_next_event(vram_client *c, int timeout_ms, uint64_t *job_out);

/* The vram error code whose name is `name` ("VRAM_EINVAL"), or
 * VRAM_EINTERNAL for a name it does not know. */
VRAM_API int vram_errcode(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* VRAM_H */
