/* SPDX-License-Identifier: MIT */
/*
 * plan/plan.h - what the files of the planning module share: the profile as
 * loaded, the settings of one run, and the estimator's inner results.
 *
 * A profile (profile.c) is read once and never changed; everything after it
 * (params.c, estimate.c, plan.c, optimize.c, calibrate.c) is arithmetic over
 * it and a plan_params.  Nothing here talks to a device except plan.c, when
 * it is asked for a device's safe available memory.
 */
#ifndef VRAM_PLAN_PLAN_H
#define VRAM_PLAN_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

#define PLAN_NAME_MAX 32
#define PLAN_TEXT_MAX 256
#define PLAN_MAX_COMPONENTS 16
#define PLAN_MAX_STAGES 8
#define PLAN_MAX_TIERS 12
#define PLAN_MAX_LEVERS 16
#define PLAN_MAX_RUNGS 16
#define PLAN_MAX_VALUES 8
#define PLAN_MAX_SETTINGS 20
#define PLAN_SETTING_MAX 64

/* Limits on what a person may ask for.  Past them an input is a typo or a
 * test of the tool, not a video: refused, never estimated. */
#define PLAN_MAX_SIDE 16384u        /* pixels a side */
#define PLAN_MAX_FRAMES 100000u     /* over an hour at 24 fps */
#define PLAN_MAX_STEPS 1000u
#define PLAN_MAX_BATCH 1024u
#define PLAN_MAX_LORA 64u
#define PLAN_MAX_FPS 240.0
#define PLAN_MAX_AUDIO_S 86400.0
/* A measured run's seconds, for calibration: the fit weighs rows by
 * 1/seconds^2, which overflows to infinity (and the multipliers to NaN)
 * for times near 1e-154 and vanishes for times near 1e154. */
#define PLAN_MIN_RUN_S 1e-3            /* the messages say "1 ms to a year" */
#define PLAN_MAX_RUN_S (86400.0 * 365)

/* ---- settings ------------------------------------------------------------ */

/* Every key a setting may have, in the order `vram estimate --help` lists
 * them.  One list makes the parser, the printer and the help agree. */
#define PLAN_SETTING_LIST(X)                                                          \
    X(RESOLUTION, "resolution", "WxH, Np or Npx: 1280x720, 720p, 512px")             \
    X(WIDTH, "width", "pixels")                                                       \
    X(HEIGHT, "height", "pixels")                                                     \
    X(FRAMES, "frames", "frames of the video (or give duration)")                    \
    X(DURATION, "duration", "seconds of video: 8, 8s, 2m (frames = duration x fps)") \
    X(FPS, "fps", "frames per second")                                                \
    X(STEPS, "steps", "denoising steps")                                              \
    X(BATCH, "batch", "videos (or frames, for per-frame stages) at once")            \
    X(CFG, "cfg", "classifier-free guidance: on|off")                                 \
    X(LORA, "lora", "LoRA adapters loaded")                                           \
    X(PRECISION, "precision", "fp32|bf16|fp16|int8 for the components that follow it") \
    X(MEMORY, "memory", "memory mode: auto|beefy|lightweight|sequential")             \
    X(VAE_TILING, "vae_tiling", "decode in tiles: on|off")                            \
    X(CHUNK, "chunk", "frames per chunk, 0 for the whole video at once")              \
    X(CPU, "cpu", "components run on the CPU: none or NAME[,NAME]")                   \
    X(SKIP, "skip", "optional stages left out: none or NAME[,NAME]")                  \
    X(AUDIO, "audio", "seconds of driving audio")                                     \
    X(RESIDENT, "resident", "share of streamed weights kept on the GPU in sequential mode, 0 to 0.9") \
    X(TIER, "tier", "auto, or a tier of the profile to use")

enum {
#define PLAN__KEY_ENUM(id, name, help) PLAN_KEY_##id,
    PLAN_SETTING_LIST(PLAN__KEY_ENUM)
#undef PLAN__KEY_ENUM
    PLAN_NKEYS
};

enum plan_dtype { PLAN_FP32, PLAN_BF16, PLAN_FP16, PLAN_INT8, PLAN_NDTYPES };

/* How often a stage runs: once a video, once per chunk of frames, once per
 * denoising step (of every chunk), or once per output frame. */
enum plan_runs { PLAN_RUNS_ONCE, PLAN_RUNS_CHUNK, PLAN_RUNS_STEP, PLAN_RUNS_FRAME };

/* The inputs an activation or time coefficient multiplies. */
enum plan_feature {
    PLAN_F_FIXED,                   /* 1 */
    PLAN_F_TOKEN,                   /* latent tokens of the chunk */
    PLAN_F_TOKEN2,                  /* tokens squared: attention without a fused kernel */
    PLAN_F_PIXEL,                   /* output pixels of the chunk (of a frame, per-frame stages) */
    PLAN_F_AREA,                    /* pixels of one frame, however many frames */
    PLAN_F_AUDIO,                   /* seconds of audio */
    PLAN_NFEATURES
};

/* A list of "key=value" settings, as a profile section or a person gave
 * them.  line[i] is where entry i was written (0: not from a file). */
typedef struct plan_settings {
    char kv[PLAN_MAX_SETTINGS][PLAN_SETTING_MAX];
    int line[PLAN_MAX_SETTINGS];
    int n;
} plan_settings;

/* The settings of one run, resolved: every field holds a value. */
typedef struct plan_params {
    uint32_t width, height;
    uint32_t frames;                /* snapped to what the model makes (4n+1, ...) */
    double fps;
    double duration_s;              /* > 0 when frames come from a duration */
    uint32_t steps, batch, lora, chunk;
    bool cfg, tiling;
    int precision;                  /* enum plan_dtype */
    int memory;                     /* VRAM_MEMORY_* */
    uint32_t cpu;                   /* bit per component run on the CPU */
    uint32_t skip;                  /* bit per stage left out */
    double audio_s;
    double resident;                /* 0..0.9 */
    double host_limit;              /* host RAM the offload may pin, bytes; 0: not
                                       checked (plans made without a context) */
    char tier[PLAN_NAME_MAX];       /* "" or "auto": the planner chooses */
    bool frames_set, duration_set;  /* within one settings list, for conflicts */
    bool args_modes;                /* planned for a command with {args}: only the
                                       memory modes [args] tells apart (resolve.c) */
} plan_params;

/* ---- the profile ------------------------------------------------------------ */

typedef struct plan_component {
    char name[PLAN_NAME_MAX];
    double params;                  /* parameter count */
    int dtype;                      /* the dtype it runs in unless it follows precision */
    bool follows;                   /* takes the precision setting */
    bool cpu_ok;                    /* may run on the CPU */
    bool lora;                      /* LoRA adapters attach to it */
    unsigned blocks;                /* units streamed one at a time in sequential mode */
    double largest;                 /* parameters of the largest unit, 0: params / blocks */
    uint32_t stages;                /* bit per stage it runs in */
    int line;
} plan_component;

typedef struct plan_stage {
    char name[PLAN_NAME_MAX];
    int runs;                       /* enum plan_runs */
    double act[PLAN_NFEATURES];     /* bytes per unit, batch 1, 16-bit activations */
    double time[PLAN_NFEATURES];    /* seconds per unit on the reference card */
    int act_line[PLAN_NFEATURES], time_line[PLAN_NFEATURES];
    double share;                   /* of the steps, for stages that run per step (MoE experts) */
    bool guided;                    /* runs twice (cond, uncond) with guidance on */
    double cfg_memory;              /* activation multiplier with guidance on */
    double tiling;                  /* pixel-term multiplier with vae_tiling on */
    bool optional;                  /* may be skipped (skip=NAME) */
    uint32_t components;            /* bit per component (derived) */
    bool follows;                   /* a component follows precision (derived) */
    int line;
} plan_stage;

typedef struct plan_tier {
    char name[PLAN_NAME_MAX];
    char range[PLAN_NAME_MAX];      /* the budget range it was made for, as written */
    plan_settings set;
    int line;
} plan_tier;

/* A line of [args]: how the pipeline's own command line takes a setting.
 * "memory.lightweight = --offload_model True --t5_cpu" applies when the
 * plan's memory is lightweight; "steps = --sample_steps {steps}" whatever
 * the value (unless a line for the value itself applies); an empty line
 * gives no words at all (a rung can drop a flag). */
#define PLAN_MAX_ARGS 32
#define PLAN_ARGS_MAX_WORDS 64
#define PLAN_ARGS_TEXT 2048
typedef struct plan_arg {
    int key;                        /* PLAN_KEY_* */
    char value[PLAN_SETTING_MAX];   /* "": any value */
    char words[PLAN_TEXT_MAX];      /* words split at spaces, with {key} */
    int line;
} plan_arg;

typedef struct plan_lever {
    int key;                        /* PLAN_KEY_* it changes */
    char values[PLAN_MAX_VALUES][PLAN_NAME_MAX];
    double quality[PLAN_MAX_VALUES]; /* quality cost of each value, 0..100 */
    int nvalues;
    int level;                      /* 0 basic, 1 balanced, 2 maximum */
    char reason[PLAN_TEXT_MAX];
    int line;
} plan_lever;

struct vram_profile {
    char name[PLAN_NAME_MAX];
    char title[PLAN_TEXT_MAX];
    char source[PLAN_TEXT_MAX];
    char hf_id[PLAN_TEXT_MAX];      /* [profile] hf_id = the Hugging Face ids of its
                                       checkpoints (OWNER/REPO ...), "" none */
    char torch[16];                 /* [profile] torch = the PyTorch the pipeline
                                       documents ("1.12"); "" unknown */
    char path[4096];
    char *text;                     /* the file as read: the calibrated copy edits it */
    size_t text_len;
    bool calibrated;                /* has a [calibration] section */
    char calibration[PLAN_TEXT_MAX];  /* its summary line */

    plan_settings defaults;
    plan_params base;               /* defaults, resolved */

    unsigned stride[3], patch[3];   /* latent: t, h, w */
    bool causal;                    /* the first frame is its own latent frame */

    double context_bytes, slack, margin, lora_bytes;

    char card[PLAN_TEXT_MAX];       /* the reference card of the time model */
    double bandwidth;               /* host<->device bytes per second */
    double cpu_factor;              /* a stage on the CPU is this much slower */
    double stream_latency;          /* seconds per streamed block */
    double fp32_factor, int8_factor, tiling_time;

    plan_component comp[PLAN_MAX_COMPONENTS];
    int ncomp;
    plan_stage stage[PLAN_MAX_STAGES];
    int nstage;
    plan_tier tier[PLAN_MAX_TIERS];
    int ntier;
    plan_lever lever[PLAN_MAX_LEVERS];
    int nlever;
    plan_settings rung[PLAN_MAX_RUNGS];
    int nrung;
    plan_arg arg[PLAN_MAX_ARGS];    /* [args], in the file's order */
    int narg;
    bool has_args;                  /* the file has an [args] section */
};

/* ---- params.c ------------------------------------------------------------------ */

/* Name of key id ("resolution"), its help line. */
const char *plan__key_name(int id);
const char *plan__key_help(int id);
int plan__key_find(const char *name);

const char *plan__dtype_name(int dtype);
int plan__dtype_bytes(int dtype);
const char *plan__memory_name(int mode);

/* Applies one "key=value" to x.  p gives the names of components and
 * stages (cpu=, skip=) and may be NULL while the profile is being read
 * (those keys are then checked later).  VRAM_EINVAL with the value named. */
int plan__params_set(const vram_profile *p, plan_params *x, const char *kv);

/* Applies a list (a profile section or a person's --set words) to x. */
int plan__params_apply(const vram_profile *p, plan_params *x, const char *const *kv, size_t n);
int plan__params_apply_list(const vram_profile *p, plan_params *x, const plan_settings *s);

/* Derives frames from a duration, snaps frames to the model's rule and
 * checks the limits.  Call once after the last apply. */
int plan__params_finish(const vram_profile *p, plan_params *x);

/* The value of key id as the plan prints it ("1280x720", "on", "40"). */
int plan__param_text(const vram_profile *p, const plan_params *x, int id, char *buf, size_t cap);

/* ---- estimate.c ----------------------------------------------------------------- */

/* One memory mode, estimated in full. */
typedef struct plan_estimate {
    int mode;                       /* VRAM_MEMORY_BEEFY.. (never AUTO) */
    double weights, activations;    /* at the peak stage */
    double context, slack, margin;
    double peak;                    /* weights + activations + context + slack + margin */
    double host;                    /* host RAM: offloaded, pinned and staged weights */
    double seconds;
    int peak_stage;                 /* index, -1 when no stage runs */
} plan_estimate;

/* Estimates x in mode (not AUTO).  VRAM_ERANGE when a figure passes 64-bit
 * bytes, naming the settings that made it. */
int plan__estimate_mode(const vram_profile *p, const plan_params *x, int mode, plan_estimate *out);

/* The activation bytes of stage s for x (0 when it is skipped or on the CPU). */
double plan__stage_activation(const vram_profile *p, const plan_params *x, int s);

/* The terms whose sum is stage s's activation bytes (or seconds) at x,
 * one per feature: coefficient x input x the multipliers (batch, guidance,
 * precision, tiling, passes).  All zero when the stage is skipped, and for
 * activations when it runs on the CPU.  Calibration scales them. */
void plan__act_terms(const vram_profile *p, const plan_params *x, int s, double t[PLAN_NFEATURES]);
void plan__time_terms(const vram_profile *p, const plan_params *x, int s, double t[PLAN_NFEATURES]);

/* Latent tokens of one chunk of x. */
double plan__tokens(const vram_profile *p, const plan_params *x);

/* Converts a finite non-negative figure to bytes, or VRAM_ERANGE. */
int plan__bytes(double v, uint64_t *out);

/* ---- alloc.c -------------------------------------------------------------------- */

/* The plan's allocator settings, for its budget and the profile's PyTorch
 * (or, when the profile does not say, the probed one). */
void plan__alloc_fill(vram_plan *plan);

/* accelerate's max_memory for the GPU: room for weights, which is the
 * budget less what the chosen mode's activations, CUDA context, slack and
 * margin take at the peak (accelerate fills the GPU entry with weights
 * alone; activations need the rest). */
uint64_t plan__weights_room(const vram_plan *plan);

/* Whether e's host RAM (offloaded and pinned weights) is within x's host
 * limit (always, when it has none, and for beefy, whose host figure is only
 * a component staged while loading). */
bool plan__host_fits(const plan_params *x, const plan_estimate *e);

/* The host RAM a plan of ctx may pin: the "host-ram" option (auto: the
 * host's available RAM now; off: 0, not checked), 0 without a context.
 * VRAM_EINVAL for a value that is none of these. */
int plan__host_limit(vram_ctx *ctx, double *out);

/* vram_plan_make for a command: with for_args (the command has {args}),
 * only the memory modes the profile's [args] tells apart are planned
 * (plan__expressed_mode), here and on every rung after. */
int vram__plan_make_for_args(vram_ctx *ctx, const vram_profile *p, const char *const *settings, size_t n,
                             uint64_t budget_bytes, unsigned device, bool for_args, vram_plan **out);

/* vram_plan_format of the plan as a job started with one visible device
 * sees it: the device (max_memory's key, execution's "cuda:N") is
 * cuda_device, CUDA's number for it in the job, not vram's index. */
int vram__plan_format_for_cuda(const vram_plan *plan, unsigned cuda_device, const char *format,
                               char **text_out);

/* The CUDA context's size the plan's profile gives (cuda_context_bytes);
 * 0 for none. */
uint64_t vram__plan_context_bytes(const vram_plan *plan);

/* ---- plan.c --------------------------------------------------------------------- */

/* Resolves AUTO: the fastest mode whose peak is at most budget (0: no
 * budget, the fastest).  all[] gets every mode's estimate (beefy,
 * lightweight, sequential).  Returns 0 and *chosen, or VRAM_ENOFIT when
 * none fits (then *chosen is the smallest).  Other errors as estimate. */
int plan__choose_mode(const vram_profile *p, const plan_params *x, uint64_t budget,
                      plan_estimate all[3], plan_estimate *chosen);

/* A copy of plan whose next rung (vram_plan_next_rung) is rung `rung`:
 * the runner passes over rungs that leave a command as it was, and their
 * settings then count for nothing, in the command or in the estimate. */
int plan__at_rung(const vram_plan *plan, size_t rung, vram_plan **out);

/* ---- resolve.c ------------------------------------------------------------------ */

/* The memory mode a command with {args} really runs in when the plan says
 * `mode` (VRAM_MEMORY_BEEFY..SEQUENTIAL): the least frugal of the modes
 * whose [args] words are the same as mode's (Wan's generate.py says
 * `--offload_model True` for lightweight and sequential alike, so it runs
 * lightweight).  With x->args_modes clear, mode itself. */
int plan__expressed_mode(const vram_profile *p, const plan_params *x, int mode);

/* "key=value" settings resolved for one profile and budget. */
typedef struct plan_resolved {
    plan_params x;                  /* defaults, then the tier's settings, then the caller's */
    int tier;                       /* index into p->tier, -1: none */
    bool tier_forced;               /* named by tier= or by the default name */
    plan_estimate modes[3];         /* beefy, lightweight, sequential at x */
    plan_estimate chosen;           /* x.memory's, or (auto) the fastest that fits */
    bool fits;                      /* chosen.peak <= budget (always with budget 0) */
    char tier_why[256];             /* "NAME needs X at the least (mode)": the tier
                                       passed over just above the one picked, or "" */
} plan_resolved;

/* The one settings resolver.  Applies p's defaults, then a tier's settings,
 * then settings (n "key=value", later ones win), and chooses the memory
 * mode for budget (0: none) as plan__choose_mode does.  The tier is the
 * one tier=NAME names; with none (or tier=auto) it is default_tier (NULL
 * or "auto": none), the "mode" option's value in the planner; with none of
 * those either, pick chooses the highest tier that fits the budget (the
 * lowest when none does), and without pick no tier applies.  Returns 0
 * whether or not the result fits (out->fits says), VRAM_EINVAL for a bad
 * setting or a tier p does not have (one message, listing its tiers), or
 * VRAM_ERANGE from the estimator. */
int plan__settings_resolve(const vram_profile *p, const char *const *settings, size_t n,
                           uint64_t budget, const char *default_tier, bool pick, plan_resolved *out);

/* The parameters alone: defaults, tier t (-1: none), settings, finished. */
int plan__resolve_params(const vram_profile *p, int t, const char *const *settings, size_t n,
                         plan_params *x);

/* Fails with VRAM_EINVAL: "tier 'NAME' is not a tier of P (tiers: ...)". */
int plan__unknown_tier(const vram_profile *p, const char *name);

/* ---- optimize.c ------------------------------------------------------------------ */

/* vram_optimize by trying every combination of the levers: the reference
 * the branch and bound is tested and benchmarked against. */
int plan__optimize_exhaustive(const vram_profile *p, const char *const *settings, size_t n,
                              uint64_t budget_bytes, int level, double max_seconds,
                              vram_optimization *out);

/* ---- profile.c, library.c -------------------------------------------------------- */

/* Parses profile text (path names it in messages) into a new profile. */
int plan__profile_parse(const char *path, const char *text, size_t len, vram_profile **out);

/* The folders profiles are searched in, for options o (NULL: defaults and
 * environment): fills dirs (cap entries, each PATH_MAX) and *n. */
int plan__profile_dirs(const vram_options *o, char dirs[][4096], int cap, int *n);

/* The default folder of calibrated copies (~/.config/vram/profiles). */
int plan__user_dir(char *buf, size_t cap);

/* A profile, component, stage or tier name: lower-case letters, digits,
 * '-', '_', '.', under PLAN_NAME_MAX. */
bool plan__valid_name(const char *s);

/* Whether s is a Hugging Face model id: OWNER/REPO, one '/', each part
 * letters, digits, '-', '_' and '.', neither empty nor "..", under 96
 * characters in all. */
bool plan__valid_hf_id(const char *s);

int plan__component_find(const vram_profile *p, const char *name);
int plan__stage_find(const vram_profile *p, const char *name);
int plan__tier_find(const vram_profile *p, const char *name);

/* ---- args.c ---------------------------------------------------------------------- */

/* Checks the words of an [args] line: printable, no quotes, '\\', '$' or
 * '`' (they go into a shell's double quotes for a CSV batch), and every
 * {key} a setting.  Fills why (cap bytes) and returns false when not. */
bool plan__args_words_ok(const char *words, char *why, size_t cap);

/* The words of x's settings for p's pipeline, each {key} replaced by x's
 * value (values[k] as the plan prints key k): text gets the words one
 * after the other, each NUL-terminated, at[i] where word i starts.
 * Returns the number of words, or -1 when they do not fit. */
int plan__args_words(const vram_profile *p, char values[][PLAN_SETTING_MAX], char *text, size_t cap,
                     uint16_t *at, int max_words);

/* Whether p's [args] turns key (a setting's name) into words: a line of
 * its own, or a {key} in a line's words (resolution counts as width and
 * height, duration and fps as frames). */
bool plan__args_use(const vram_profile *p, const char *key);

/* Where "{args}" starts in text, not counting "{{...}}", or NULL: whether a
 * command's word (or, for vramd, its argv as JSON) asks for the plan's words. */
const char *plan__find_args(const char *text);

/* ---- lsq.c ---------------------------------------------------------------------- */

/* Non-negative weighted least squares, n rows of k <= 8 columns (row-major
 * a[i*k + j]), target y, weights w: finds x >= 0 minimising
 * sum w_i (a_i.x - y_i)^2.  Columns that would go negative are dropped and
 * the rest refitted.  Returns 0, or VRAM_EINVAL when no column can be
 * fitted (then x is left as it was). */
int plan__nnls(const double *a, const double *y, const double *w, int n, int k, double *x);

#endif /* VRAM_PLAN_PLAN_H */
