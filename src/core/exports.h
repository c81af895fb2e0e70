/* SPDX-License-Identifier: MIT */
/*
 * core/exports.h - what libvram exports for its own programs but does not
 * promise to library users: the renderers the `vram` command and the
 * Python binding print (JSON, text, SVG, help lines), and a few internals
 * they need (the raw socket call, the simulated cards' usage, a daemon
 * job's run).
 *
 * These may change with any release; include/vram.h is the contract.  The
 * command links the shared library, so what it calls here stays VRAM_API
 * (visible); what only the library and its tests call is declared without
 * it and is not exported from libvram.so.  The conventions of vram.h hold
 * here too: 0 or a negative VRAM_E* code, out-parameters cleared on
 * failure, strings from the library freed with vram_free().
 */
#ifndef VRAM_CORE_EXPORTS_H
#define VRAM_CORE_EXPORTS_H

#include <stdio.h>

#include "vram.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- help screens ---------------------------------------------------------------- */

/* Describes option number `i` (0-based) for help screens.  Returns
 * VRAM_ENOENT past the end.  Strings are static. */
VRAM_API int vram_option_describe(unsigned i, const char **name_out, const char **default_out,
                                  const char **help_out);

/* Describes setting key number i for help screens.  VRAM_ENOENT past the
 * end.  Strings are static.  Not exported. */
int vram_plan_setting_describe(unsigned i, const char **key_out, const char **help_out);

/* ---- devices and the monitor ---------------------------------------------------- */

/* The snapshot as one JSON document (bytes as integers; the README's
 * "vram status --json" documents the fields).  Free *json_out with
 * vram_free.  The command's status and the Python binding's print it. */
VRAM_API int vram_snapshot_to_json(const vram_snapshot *snap, char **json_out);

/* The marks so far as a table with the delta between stages, one line each,
 * for people.  Free with vram_free. */
VRAM_API int vram_monitor_marks_text(vram_monitor *m, char **text_out);

/* "growing 12.0 MiB per iteration over 40 iterations (95% CI 11.2 MiB ..
 * 12.9 MiB)" or "flat over 40 iterations (...)".  `unit` names one step
 * ("iteration", "frame", "sample"); NULL means "iteration".  Like snprintf. */
VRAM_API int vram_trend_describe(const vram_trend *t, const char *unit, char *buf, size_t cap);

/* On the sim backend with a shared state directory (option "sim_state"),
 * records that this process now holds `bytes` on simulated device `idx`, as
 * a program that really allocates would.  Every process opened on the same
 * spec and state directory sees it, until this process sets 0 or exits.
 * VRAM_EOOM when the device has less free than the increase asked for;
 * VRAM_ENOTSUP on a real backend or without a state directory.  For tests
 * and the demo (the Python binding's examples allocate this way). */
VRAM_API int vram_sim_set_usage(vram_ctx *ctx, unsigned idx, uint64_t bytes);

/* ---- profiles, estimates, plans -------------------------------------------------- */

/* The profiles of the "profiles" folders as a JSON array of {"name",
 * "title", "path", "calibrated", "tiers", "shadows", and "error" for a file
 * that does not load}.  Free with vram_free. */
VRAM_API int vram_profile_list_json(const vram_options *opts, char **json_out);

/* The whole profile as JSON (components, stages, tiers with their
 * estimates in each mode, ladder, levers) or as text for people.  Free with
 * vram_free. */
VRAM_API int vram_profile_to_json(const vram_profile *p, char **json_out);
VRAM_API int vram_profile_describe(const vram_profile *p, char **text_out);

/* Every rung of the profile's ladder joined by "; ", the form a --ladder
 * takes.  Like snprintf.  Not exported. */
int vram_profile_ladder_text(const vram_profile *p, char *buf, size_t cap);

/* The estimate as JSON (settings, the chosen mode's figures, every mode's,
 * "fits" when a budget is given), or as text for people.  Made also when
 * nothing fits the budget (vram_estimate_run says so).  Free with
 * vram_free. */
VRAM_API int vram_estimate_json(const vram_profile *p, const char *const *settings, size_t n,
                                uint64_t budget_bytes, char **json_out);
VRAM_API int vram_estimate_text(const vram_profile *p, const char *const *settings, size_t n,
                                uint64_t budget_bytes, char **text_out);

/* The plan as text (for people), json, env (KEY=value lines) or shell
 * (export lines for eval).  Free *text_out with vram_free. */
VRAM_API int vram_plan_format(const vram_plan *plan, const char *format, char **text_out);

/* The plan for a model, as the JSON `vram plan --format json` prints (the
 * Python binding's vram.plan()).  settings: nsettings "key=value" strings
 * (may be NULL when 0).  budget_bytes: 0 means the safe available memory of
 * `device` now.  ctx may be NULL when budget_bytes is given (then defaults
 * and the environment stand for its options).  Free *json_out with
 * vram_free. */
VRAM_API int vram_plan_json(vram_ctx *ctx, const char *model, const char *const *settings,
                            size_t nsettings, uint64_t budget_bytes, unsigned device,
                            char **json_out);

/* vram_plan_make, but when nothing fits the plan is made all the same
 * (VRAM_ENOFIT is returned and *out is set; vram_plan_fits is 0): its
 * tier and memory mode are the smallest, vram_plan_why is the refusal,
 * and its JSON (vram_plan_format) says what to change ("needs_bytes",
 * "short_bytes", "change": the optimizer's cheapest way to fit, then the
 * budget it would take).  Other errors leave *out NULL.  Free with
 * vram_plan_free. */
VRAM_API int vram_plan_make_any(vram_ctx *ctx, const vram_profile *p, const char *const *settings,
                                size_t n, uint64_t budget_bytes, unsigned device, vram_plan **out);

/* The optimization as JSON.  Free with vram_free. */
VRAM_API int vram_optimization_json(const vram_profile *p, const vram_optimization *o,
                                    char **json_out);

/* Rows and fitted coefficients as JSON.  Free with vram_free. */
VRAM_API int vram_calibration_json(const vram_calibration *c, char **json_out);

/* ---- the ledger ------------------------------------------------------------------ */

/* Records a lease for work that already runs on req->device (a job a
 * restarted daemon finds running): granted at once, whatever the room, so
 * that the books match the card; wait_ms is ignored.  Released as any other.
 * VRAM_ENODEV when req->device is not a device (VRAM_DEVICE_ANY included).
 * vramd's recovery uses it; not exported. */
int vram_lease_adopt(vram_ledger *l, const vram_lease_request *req, vram_lease_info *out);

/* ---- scheduler -------------------------------------------------------------------- */

/* The stats as JSON, one key per counter plus "leased_bytes": [...]
 * (the Python binding's Scheduler.stats()).  Free with vram_free. */
VRAM_API int vram_sched_stats_json(vram_sched *s, char **json_out);

/* Resamples src to width x height x channels with a Lanczos-3 filter
 * (channels are converted first: gray <-> RGB, alpha added opaque or
 * dropped).  dst->data is new memory: free it with vram_free.  The
 * scheduler's collector uses it on image results; not exported. */
int vram_image_resample(const vram_image *src, uint32_t width, uint32_t height, uint32_t channels,
                        vram_image *dst);

/* ---- jobs and the history ------------------------------------------------------- */

/* The newest `limit` runs (0: 50), newest first, as a JSON array; `job`
 * (or NULL) keeps one job's attempts.  Free with vram_free. */
VRAM_API int vram_history_json(vram_history *h, unsigned limit, const char *job, char **json_out);

/* Draws the memory timelines of the given runs (1 to 8) side by side as an
 * SVG document: seconds across, GiB up, one line per run, its estimate
 * dashed.  VRAM_ENOENT names a run that is not there.  Free with vram_free. */
VRAM_API int vram_history_report_svg(vram_history *h, const int64_t *ids, size_t n, char **svg_out);

/* vram_job_run for the runner vramd starts (`vram run --daemon-job N`):
 * the job is vramd's job `daemon_job` (> 0).  Its argv, budget, model,
 * settings, ladder and name come from vramd with its claim, so those
 * fields of spec are not read; it is named "vramd-N" unless the job has a
 * name. */
VRAM_API int vram_job_run_for_daemon(vram_ctx *ctx, const vram_job_spec *spec, uint64_t daemon_job,
                                     vram_job_result *out);
/* Runner reuse: the next job vramd gives a runner whose job ended, and
 * where the runner puts itself for it (its user's own folder, log,
 * --output and end file); job 0: none, the runner ends. */
typedef struct vram_job_next {
    uint64_t job;
    char cwd[4096], log[4096], output[4096], end_file[4096];
} vram_job_next;
/* vram_job_run_for_daemon that, when next is not NULL and the run was not
 * interrupted, asks vramd with the job's end for the same user's next job
 * (*next; its job 0 when none).  The interrupt flag (vram_job_interrupt)
 * is then left as it was rather than cleared first, so that a signal
 * between two jobs ends the runner: see vram_job_interrupted. */
VRAM_API int vram_job_run_daemon_job(vram_ctx *ctx, const vram_job_spec *spec, uint64_t daemon_job,
                                     vram_job_result *out, vram_job_next *next);
/* Where a daemon job's runner puts itself for its job (wire/place.c), as
 * vramd's forked runner does between fork and exec and a reused runner
 * does for its next job: system calls only, no allocation, no error text.
 * vram_job_log_enter makes log's folders (0700, when make_folders; log is
 * changed and put back) and opens it (appending, O_NOFOLLOW, 0600) as
 * stdout and stderr: 0, VRAM_EINVAL (not an absolute path) or VRAM_EIO.
 * vram_job_place_enter removes end_file (when not NULL or ""), puts
 * --output (when not NULL or "") over stdout and stderr, or says on
 * stderr, after "who: ", why not, and enters cwd: 0, or VRAM_EIO when cwd
 * cannot be entered (said the same way). */
VRAM_API int vram_job_log_enter(char *log, int make_folders);
/* `vram __spawner`: the process vramd execs once to fork its runners
 * (daemon/spawn.c).  Serves vramd on fd 3 until its EOF; each runner it
 * forks runs entry(argc, argv), the program's main, with the argv and
 * environment vramd sent.  Run by hand it says it is vramd's and returns 2. */
#define VRAM_SPAWNER_COMMAND "__spawner"
VRAM_API int vram_daemon_spawner(int argc, char **argv, int (*entry)(int, char **));
VRAM_API int vram_job_place_enter(const char *end_file, const char *output, const char *cwd, const char *who);
/* Whether vram_job_interrupt was called (since the last run that cleared it). */
VRAM_API int vram_job_interrupted(void);
/* What a daemon job's runner can learn before its turn, learned now: its
 * cgroup and the job's PyTorch (probed beside the python3 on PATH).  vramd's
 * runner, started ahead, calls it while it waits at its gate; the runs of
 * this process then use what it found.  Call it once, before any run. */
VRAM_API void vram_job_runner_warm(void);

/* ---- the daemon's socket -------------------------------------------------------- */

/* Sends one request (a JSON object, see README "Socket protocol") and
 * returns the reply line.  A reply with "ok": false becomes its error code
 * (by name) with its message in vram_last_error(); *reply_json is then NULL.
 * timeout_ms < 0 waits forever.  Free *reply_json with vram_free. */
VRAM_API int vram_client_call(vram_client *c, const char *request_json, int timeout_ms,
                              char **reply_json);

/* vram_client_jobs_page, and the client leases its reply carries, from one
 * request: `vram queue` lists both with one round trip.  The leases as
 * vram_client_leases gives them (VRAM_ERANGE when there are more than cap,
 * *nleases then the whole count, and the page is still given). */
VRAM_API int vram_client_jobs_page_leases(vram_client *c, const char *state, uint64_t limit, const char *after,
                                          vram_job_list **out, char *next, size_t nextcap,
                                          vram_lease_info *leases, size_t cap, size_t *nleases);

/* ---- files ---------------------------------------------------------------------- */

/* fopen(path, "r") for a file to read through (a CSV, a trace, a list of
 * measurements): a folder, which opens and fails only at its first read
 * (read by some as an empty file), is NULL with errno EISDIR. */
VRAM_API FILE *vram_file_open_read(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* VRAM_CORE_EXPORTS_H */
