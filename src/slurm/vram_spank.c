/* SPDX-License-Identifier: MIT */
/*
 * slurm/vram_spank.c - the SPANK plugin: Slurm steps that speak bytes of GPU
 * memory.
 *
 * Adds --vram=SIZE and --vram-enforce=hard|soft|off to srun, sbatch and
 * salloc.  In each task of a step it sets the budget as `vram run` does
 * (VRAM_BUDGET_BYTES, VRAM_LEASE, VRAM_JOB...) and preloads the shim, so
 * every process of the step is held to its bytes.  A step with
 * --gres=shard:N and no --vram gets N/shards-per-card of its card.  When
 * vramd answers on the node, slurmstepd takes one lease per local task
 * before the tasks exec and holds the connection for the step's life: the
 * lease comes back when the step ends, however it ends.
 *
 * The wait for room runs in a thread of slurmstepd while the tasks, forked
 * already, wait on a pipe before they exec: Slurm can signal a step only
 * once its tasks exist, so a step cancelled while it waits ends at once
 * (its tasks die, slurmstepd ends, the pending request goes with the
 * connection) instead of holding its place in vramd's queue.
 *
 * Each task gets the shim's region (runner/enforce.c, as `vram run`'s jobs
 * do): one count for all of the task's processes, exec'd or forked, and
 * the same thread, as the task's runner would, hands back the bytes of a
 * process that dies holding them.
 *
 * Owns the Slurm side only: sizes, the daemon's protocol and the card's
 * memory come from libvram (linked in statically, its symbols kept inside).
 *
 * Contexts (see spank(8)): local (srun) and allocator (sbatch, salloc) check
 * the options at submission; remote (slurmstepd) sizes, leases and sets the
 * tasks' environment.  The slurmd and job-script contexts do nothing.
 *
 * plugstack.conf arguments, all optional:
 *   shim=PATH          the LD_PRELOAD library (default LIBDIR/vram/libvram_shim.so,
 *                      set at build time: /usr/lib/x86_64-linux-gnu/vram/ on Debian)
 *   enforce=MODE       hard, soft or off when a step does not say (hard)
 *   card_bytes=SIZE    a card's memory where NVML is absent
 *   nvml_library=PATH  NVML where the loader does not find libnvidia-ml.so.1
 *   shards=N           shards per card (default: gres.conf's Name=shard Count)
 *   socket=PATH        vramd's socket (default: vram's usual places, as
 *                      slurmstepd sees them; never the job's VRAM_SOCKET:
 *                      a job does not choose its referee)
 *   require_vramd=BOOL a step with a budget fails when vramd is unreachable (no)
 *   lease_wait=TIME    how long a step waits for room (5m)
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "vram.h"
#include "core/exports.h"           /* vram_client_call: the lease is named, the owner told */
#include "runner/runner.h"          /* vram__enforce: the shim's region of each task */

SPANK_PLUGIN(vram, 1);

/* The shim's installed path: LIBDIR/vram/ as the Makefile sets it at build
 * time (VRAM_PKGLIBDIR, multiarch on Debian: /usr/lib/x86_64-linux-gnu/vram),
 * where `make install` puts it.  No guess is compiled in. */
#ifndef VRAM_PKGLIBDIR
#error "VRAM_PKGLIBDIR (the Makefile's LIBDIR/vram) must be defined"
#endif
#define VRAM_SHIM_PATH VRAM_PKGLIBDIR "/libvram_shim.so"

/* A step's leases are one per local task; a step with a budget and more
 * tasks than this on one node fails, saying so.  The grant that every task
 * reads from the pipe holds all of them and stays under PIPE_BUF (one
 * atomic write each), and MAX_TASKS copies fit in a pipe's 64 KiB, so the
 * waiter never blocks on a task that died before reading. */
#define MAX_TASKS 64

/* What the waiter tells each task: status 0 and the leases, or -1. */
typedef struct grant {
    int32_t status;
    uint32_t count;
    uint64_t lease[MAX_TASKS];
    uint32_t device[MAX_TASKS];
} grant;
_Static_assert(sizeof(grant) <= 4096 && MAX_TASKS * sizeof(grant) <= 65536,
               "a grant is written atomically, and all of them fit in a pipe");

enum enforce { ENFORCE_UNSET = -1, ENFORCE_OFF, ENFORCE_SOFT, ENFORCE_HARD };
static const char *const enforce_names[] = { "off", "soft", "hard" };

/* The plugin's state in one process: slurmstepd for a step, srun/sbatch for
 * a submission.  SPANK gives no per-call user pointer, so it is one struct. */
static struct {
    /* plugstack.conf */
    char shim[PATH_MAX];
    enum enforce enforce_default;
    uint64_t card_bytes;            /* 0: not configured */
    char nvml_library[PATH_MAX];    /* "": the loader's libnvidia-ml.so.1 */
    unsigned shards;                /* 0: read gres.conf */
    char socket[PATH_MAX];          /* "": the job's or the default */
    bool require_vramd;
    int64_t lease_wait_ms;
    /* options */
    char vram_text[64];             /* --vram as given; "" when absent */
    uint64_t vram_bytes;
    enum enforce enforce;           /* --vram-enforce, or ENFORCE_UNSET */
    /* the step, in slurmstepd */
    uint32_t job, step;
    char label[48];                 /* "job 12 step 0", "job 12 step batch" */
    uint64_t budget;                /* per task; 0: the step has none */
    enum enforce mode;
    int device;                     /* the card of the step, -1: unknown */
    bool slurm_gpus;                /* Slurm gave the step cards (gres) */
    bool inherited;                 /* a batch step's lease covers it */
    bool failed;                    /* the step cannot have its budget */
    vram_client *client;
    uint32_t ntasks;                /* local tasks */
    unsigned nleases;
    uint64_t lease[MAX_TASKS];
    unsigned lease_device[MAX_TASKS];
    /* the waiter thread (slurmstepd) and the grant's pipe */
    pthread_t waiter;
    bool waiter_started;
    int grant_r, grant_w;
    pthread_mutex_t mu;             /* guards task_pid and npids */
    pthread_cond_t cv;
    pid_t task_pid[MAX_TASKS];
    unsigned npids;
    atomic_bool leases_done;        /* the waiter is done with the client */
    unsigned nregions;
    vram__enforce region[MAX_TASKS];    /* the shim's count, one per task */
} g = { .enforce_default = ENFORCE_HARD, .enforce = ENFORCE_UNSET, .device = -1,
        .lease_wait_ms = 5 * 60 * 1000, .grant_r = -1, .grant_w = -1,
        .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* ---- options ----------------------------------------------------------------------- */

static int parse_enforce(const char *text, enum enforce *out)
{
    for (int i = 0; i < 3; i++)
        if (text && !strcasecmp(text, enforce_names[i])) {
            *out = (enum enforce)i;
            return 0;
        }
    return -1;
}

/* Checks a --vram value; the one line naming it goes to the user, the
 * value escaped (it is the user's text, and goes to a terminal and to
 * slurmd's log). */
static int check_vram(const char *text, uint64_t *bytes_out)
{
    uint64_t b = 0;
    char shown[256], why[512];
    vram_text_escape(text ? text : "", shown, sizeof(shown));
    if (!text || vram_size_parse(text, &b)) {
        slurm_error("vram: --vram=%s: %s", shown, vram_text_escape(vram_last_error(), why, sizeof(why)));
        return -1;
    }
    if (!b) {
        slurm_error("vram: --vram=%s: a budget must be more than 0 bytes", shown);
        return -1;
    }
    *bytes_out = b;
    return 0;
}

static int opt_vram(int val, const char *arg, int remote)
{
    uint64_t b = 0;
    char shown[256];
    if (arg && strlen(arg) >= sizeof(g.vram_text)) {
        slurm_error("vram: --vram=%.40s...: too long for a size", vram_text_escape(arg, shown, sizeof(shown)));
        return -1;
    }
    if (check_vram(arg, &b))
        return -1;
    snprintf(g.vram_text, sizeof(g.vram_text), "%s", arg);
    g.vram_bytes = b;
    return 0;
}

static int opt_enforce(int val, const char *arg, int remote)
{
    if (parse_enforce(arg, &g.enforce)) {
        char shown[256];
        slurm_error("vram: --vram-enforce=%s: use hard, soft or off", vram_text_escape(arg ? arg : "", shown,
                                                                                        sizeof(shown)));
        return -1;
    }
    return 0;
}

/* Registered from slurm_spank_init in every context: sbatch and salloc
 * know only options registered that way (a table named spank_options is
 * read by srun and slurmstepd alone). */
static struct spank_option options[] = {
    { "vram", "SIZE",
      "GPU memory budget of each task (512M, 3G, 8GiB...), held by vram's shim "
      "and admitted by vramd on the node", 1, 0, opt_vram },
    { "vram-enforce", "MODE",
      "hard: refuse allocations past --vram; soft: let them through and count "
      "them; off: the budget is advice only", 1, 0, opt_enforce },
};

/* ---- plugstack.conf ---------------------------------------------------------------- */

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return true;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* One key=value argument; a bad one is named and refused. */
static int parse_arg(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) {
        slurm_error("vram: plugstack.conf argument '%s' is not key=value "
                    "(shim, enforce, card_bytes, nvml_library, shards, socket, require_vramd, lease_wait)", arg);
        return -1;
    }
    size_t klen = (size_t)(eq - arg);
    const char *v = eq + 1;
    uint64_t n = 0;
#define KEY(k) (klen == strlen(k) && !strncmp(arg, k, klen))
    if (KEY("shim") || KEY("socket") || KEY("nvml_library")) {
        char *dst = KEY("shim") ? g.shim : KEY("socket") ? g.socket : g.nvml_library;
        if (strlen(v) >= PATH_MAX || (*v && *v != '/')) {
            slurm_error("vram: plugstack.conf %s: needs an absolute path", arg);
            return -1;
        }
        snprintf(dst, PATH_MAX, "%s", v);
    } else if (KEY("enforce")) {
        if (parse_enforce(v, &g.enforce_default)) {
            slurm_error("vram: plugstack.conf %s: use hard, soft or off", arg);
            return -1;
        }
    } else if (KEY("card_bytes")) {
        if (vram_size_parse(v, &g.card_bytes) || !g.card_bytes) {
            slurm_error("vram: plugstack.conf %s: not a size: %s", arg, vram_last_error());
            return -1;
        }
    } else if (KEY("shards")) {
        char *end;
        errno = 0;
        unsigned long s = strtoul(v, &end, 10);
        if (!isdigit((unsigned char)*v) || *end || errno || !s || s > 100000) {
            slurm_error("vram: plugstack.conf %s: shards per card must be 1..100000", arg);
            return -1;
        }
        g.shards = (unsigned)s;
    } else if (KEY("require_vramd")) {
        if (!parse_bool(v, &g.require_vramd)) {
            slurm_error("vram: plugstack.conf %s: use yes or no", arg);
            return -1;
        }
    } else if (KEY("lease_wait")) {
        if (vram_duration_parse(v, 1000, &n)) {
            slurm_error("vram: plugstack.conf %s: %s", arg, vram_last_error());
            return -1;
        }
        g.lease_wait_ms = (int64_t)n;
    } else {
        slurm_error("vram: plugstack.conf argument '%s': unknown key (shim, enforce, "
                    "card_bytes, nvml_library, shards, socket, require_vramd, lease_wait)", arg);
        return -1;
    }
#undef KEY
    return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
    snprintf(g.shim, sizeof(g.shim), "%s", VRAM_SHIM_PATH);
    for (int i = 0; i < ac; i++)
        if (parse_arg(av[i]))
            return -1;
    spank_context_t ctx = spank_context();
    if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR && ctx != S_CTX_REMOTE)
        return 0;
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        if (spank_option_register(sp, &options[i]) != ESPANK_SUCCESS) {
            slurm_error("vram: could not register --%s", options[i].name);
            return -1;
        }
    return 0;
}

/* ---- submission (srun, sbatch, salloc) --------------------------------------------- */

static void format_size(uint64_t bytes, char *buf, size_t cap)
{
    vram_size_format(bytes, buf, cap);
}

/* The options are known here: a budget larger than the configured card is
 * refused before anything is queued.  (Where only NVML knows the card, the
 * node refuses it at the step's start.) */
static int check_submission(void)
{
    if (g.vram_text[0] && g.card_bytes && g.vram_bytes > g.card_bytes) {
        char card[32];
        format_size(g.card_bytes, card, sizeof(card));
        slurm_error("vram: --vram=%s is more than any card here (%s, plugstack.conf card_bytes)",
                    g.vram_text, card);
        return -1;
    }
    return 0;
}

/* ---- the step, in slurmstepd ------------------------------------------------------- */

static bool step_getenv(spank_t sp, const char *name, char *buf, int cap)
{
    return spank_getenv(sp, name, buf, cap) == ESPANK_SUCCESS && buf[0];
}

/* NVML, as vramd sees the node's cards (every one, in NVML's order); NULL
 * where it is not there. */
static vram_ctx *open_nvml(void)
{
    vram_options *o = NULL;
    vram_ctx *ctx = NULL;
    if (vram_options_new(&o) || vram_options_set(o, "backend", "nvml", NULL) ||
        (g.nvml_library[0] && vram_options_set(o, "nvml-library", g.nvml_library, NULL)) ||
        vram_ctx_open(&ctx, o))
        ctx = NULL;
    vram_options_free(o);
    return ctx;
}

/* vramd's number of the card whose device file is /dev/nvidia`minor`:
 * Slurm counts device files (gres.conf's File=), vramd NVML's order, and
 * the two differ on nodes whose files do not follow the PCI order.  The
 * number itself where NVML cannot say. */
static int device_of_minor(int minor)
{
    vram_ctx *ctx = open_nvml();
    unsigned count = 0, m;
    int found = -1;
    if (ctx && !vram_device_count(ctx, &count))
        for (unsigned i = 0; i < count && found < 0; i++)
            if (!vram_device_minor(ctx, i, &m) && m == (unsigned)minor)
                found = (int)i;
    vram_ctx_close(ctx);
    return found >= 0 ? found : minor;
}

/* The card of the step, as vramd numbers it: the first that Slurm gave it,
 * or -1 when Slurm gave none, or none by number (*given_out says whether
 * it gave any).  SLURM_STEP_GPUS and SLURM_JOB_GPUS are device-file
 * numbers (device_of_minor); CUDA_VISIBLE_DEVICES is relative to the
 * cards a cgroup lets the step see, so it is the last resort, taken as it
 * is.  A step of several cards has its lease on the first. */
static int step_device(spank_t sp, bool *given_out)
{
    static const char *const vars[] = { "SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES" };
    char buf[256];
    size_t i = 0;
    while (i < 3 && !step_getenv(sp, vars[i], buf, sizeof(buf)))
        i++;
    *given_out = i < 3;
    if (i == 3)
        return -1;
    char *end;
    errno = 0;
    long d = strtol(buf, &end, 10);
    if (!isdigit((unsigned char)buf[0]) || (*end && *end != ',') || errno || d < 0 ||
        d >= VRAM_MAX_DEVICES)
        return -1;
    return i < 2 ? device_of_minor((int)d) : (int)d;
}

/* The memory of card `device` (-1: the first): NVML's, else card_bytes=,
 * else 0 with *why saying what is missing. */
static uint64_t card_memory(int device, const char **why)
{
    vram_ctx *ctx = open_nvml();
    vram_device_info info;
    uint64_t bytes = 0;
    if (ctx && !vram_device_query(ctx, device < 0 ? 0 : (unsigned)device, &info) &&
        (info.have & VRAM_HAVE_MEMORY))
        bytes = info.total_bytes;
    vram_ctx_close(ctx);
    if (!bytes)
        bytes = g.card_bytes;
    if (!bytes)
        *why = "NVML is not there and plugstack.conf sets no card_bytes=";
    return bytes;
}

/* Shards per card: shards= in plugstack.conf, else the first Count of a
 * Name=shard line of the gres.conf beside slurm.conf.  0 when unknown. */
static unsigned shards_per_card(void)
{
    if (g.shards)
        return g.shards;
    const char *conf = getenv("SLURM_CONF");
    char path[PATH_MAX];
    const char *slash = conf ? strrchr(conf, '/') : NULL;
    if (slash)
        snprintf(path, sizeof(path), "%.*s/gres.conf", (int)(slash - conf), conf);
    else
        snprintf(path, sizeof(path), "/etc/slurm/gres.conf");
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[1024];
    unsigned count = 0;
    for (int n = 0; !count && n < 10000 && fgets(line, sizeof(line), f); n++) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        if (!strcasestr(line, "Name=shard"))
            continue;
        char *c = strcasestr(line, "Count=");
        if (c) {
            unsigned long v = strtoul(c + 6, NULL, 10);
            count = v > 0 && v <= 100000 ? (unsigned)v : 0;
        }
    }
    fclose(f);
    return count;
}

/* The per-task budget of the step: --vram, else its shards' share of the
 * card, else 0 (no budget: the plugin leaves the step alone). */
static int step_budget(spank_t sp, uint64_t *out)
{
    *out = 0;
    const char *why = NULL;
    if (g.vram_text[0]) {
        uint64_t card = card_memory(g.device, &why);
        if (card && g.vram_bytes > card) {
            char a[32];
            format_size(card, a, sizeof(a));
            slurm_error("vram: --vram=%s is more than the card's %s", g.vram_text, a);
            return -1;
        }
        *out = g.vram_bytes;
        return 0;
    }
    char buf[32];
    if (!step_getenv(sp, "SLURM_SHARDS_ON_NODE", buf, sizeof(buf)))
        return 0;
    unsigned long n = strtoul(buf, NULL, 10);
    unsigned per_card = shards_per_card();
    uint64_t card = card_memory(g.device, &why);
    if (!n)
        return 0;
    if (!per_card || !card) {
        /* A sharded step that ran before the plugin keeps running. */
        slurm_info("vram: --gres=shard:%lu left without a budget: %s", n,
                   !per_card ? "no shard count (plugstack.conf shards= or gres.conf Name=shard Count=)"
                             : why);
        return 0;
    }
    if (n > per_card)
        n = per_card;
    /* Shards are counted per node; the node's tasks split them. */
    uint32_t tasks = 1;
    if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &tasks) != ESPANK_SUCCESS || !tasks)
        tasks = 1;
    *out = (uint64_t)((unsigned __int128)card * n / per_card / tasks);
    return 0;
}

/* Picks the "lease" and "device" numbers out of the daemon's reply. */
static bool reply_uint(const char *json, const char *key, uint64_t *out)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return false;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    *out = strtoull(p, NULL, 10);
    return true;
}

/* The step's name as people read it: 0, 1..., or batch, extern,
 * interactive for Slurm's special steps. */
static const char *step_name(char *buf, size_t cap)
{
    switch (g.step) {
    case 0xfffffffbu: return "batch";
    case 0xfffffffcu: return "extern";
    case 0xfffffffau: return "interactive";
    default: snprintf(buf, cap, "%" PRIu32, g.step); return buf;
    }
}

/* One lease of the step's budget for local task `task`, named after the
 * Slurm job and step so that vramd's listings show whose it is.  Runs on
 * the waiter thread: only the wait itself may be cancelled (the thread is
 * cancelled when the step ends first), never a log call holding Slurm's
 * lock. */
static int take_lease(unsigned task)
{
    char req[512], step[16];
    int n = snprintf(req, sizeof(req),
                     "{\"op\": \"lease\", \"v\": 1, \"vram\": %" PRIu64 ", \"holder\": "
                     "\"slurm job %" PRIu32 " step %s task %u\"",
                     g.budget, g.job, step_name(step, sizeof(step)), task);
    if (g.device >= 0)
        n += snprintf(req + n, sizeof(req) - (size_t)n, ", \"device\": %d", g.device);
    if (g.lease_wait_ms >= 0)
        n += snprintf(req + n, sizeof(req) - (size_t)n, ", \"wait_ms\": %" PRId64, g.lease_wait_ms);
    snprintf(req + n, sizeof(req) - (size_t)n, "}");
    char *reply = NULL;
    int timeout = g.lease_wait_ms >= 0 && g.lease_wait_ms < INT_MAX - 10000
                      ? (int)g.lease_wait_ms + 10000 : -1;
    int old_state;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old_state);
    int rc = vram_client_call(g.client, req, timeout, &reply);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_state);
    uint64_t id = 0, dev = 0;
    if (!rc && (!reply_uint(reply, "lease", &id) || !reply_uint(reply, "device", &dev)))
        rc = VRAM_EPARSE;
    vram_free(reply);
    if (rc) {
        char a[32], w[32];
        format_size(g.budget, a, sizeof(a));
        snprintf(w, sizeof(w), "%.1f s", (double)g.lease_wait_ms / 1000.0);
        if (rc == VRAM_ETIMEDOUT)
            slurm_error("vram: %s: no room for %s on the node's GPUs "
                        "within %s (vramd at %s); plugstack.conf lease_wait= sets the wait",
                        g.label, a, w, vram_client_socket(g.client));
        else
            slurm_error("vram: %s: vramd at %s refused a lease of %s: %s (%s)",
                        g.label, vram_client_socket(g.client), a, vram_last_error(),
                        vram_errname(rc));
        return -1;
    }
    g.lease[g.nleases] = id;
    g.lease_device[g.nleases] = (unsigned)dev;
    g.nleases++;
    return 0;
}

/* Tells vramd that task i's process group uses lease i's memory (ours,
 * not others'), as for `vram run`'s jobs.  Each task leads a process group
 * of its own in slurmstepd. */
static void name_owner(unsigned i, pid_t pid)
{
    char req[128], *reply = NULL;
    snprintf(req, sizeof(req), "{\"op\": \"owner\", \"v\": 1, \"lease\": %" PRIu64 ", \"pgid\": %d}",
             g.lease[i], (int)pid);
    if (vram_client_call(g.client, req, 5000, &reply))
        slurm_verbose("vram: %s: vramd did not take task %u's process group: %s", g.label, i,
                      vram_last_error());
    vram_free(reply);
}

/* The waiter: the leases (as long as lease_wait= allows), then the tasks'
 * owners once slurmstepd has forked them all, then one grant per task. */
static void give_grants(void)
{
    grant gr;
    memset(&gr, 0, sizeof(gr));
    gr.status = -1;
    bool ok = true;
    for (unsigned t = 0; ok && t < g.ntasks; t++)
        ok = !take_lease(t);
    if (ok) {
        gr.status = 0;
        gr.count = g.nleases;
        for (unsigned i = 0; i < g.nleases; i++) {
            gr.lease[i] = g.lease[i];
            gr.device[i] = g.lease_device[i];
        }
        /* The tasks are forked before they are let go, so their pids come
         * soon; 10 s bounds a fork that failed. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        pid_t pids[MAX_TASKS];
        pthread_mutex_lock(&g.mu);
        while (g.npids < g.ntasks && !pthread_cond_timedwait(&g.cv, &g.mu, &until))
            ;
        unsigned n = g.npids < g.nleases ? g.npids : g.nleases;
        memcpy(pids, g.task_pid, sizeof(pids));
        pthread_mutex_unlock(&g.mu);
        for (unsigned i = 0; i < n; i++)
            if (pids[i] > 0)
                name_owner(i, pids[i]);
    }
    for (unsigned t = 0; t < g.ntasks; t++)
        if (write(g.grant_w, &gr, sizeof(gr)) != (ssize_t)sizeof(gr))
            break;                  /* the tasks read EOF, and fail */
}

/* The thread of the step: the leases and the grants when vramd answers,
 * then, for the step's life, the bytes of a task's dead processes back to
 * its count every 250 ms (only that sleep can be cancelled). */
static void *waiter_main(void *arg)
{
    if (g.client)
        give_grants();
    atomic_store(&g.leases_done, true);
    while (g.nregions) {
        for (unsigned t = 0; t < g.nregions; t++)
            vram__enforce_reclaim(&g.region[t]);
        struct timespec pause = { 0, 250 * 1000 * 1000 };
        int old_state;
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old_state);
        nanosleep(&pause, NULL);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_state);
    }
    return arg;
}

/* Connects to vramd, when it answers, and makes the grants' pipe. */
/* g.client, connected once for the step: to check a lease it would
 * inherit, and to take its own. */
static int open_vramd(void)
{
    /* Never the job's VRAM_SOCKET: a job does not pick its referee (one
     * that answers nothing would let it run unleased, one of its own
     * would say yes to anything). */
    int rc = g.client ? 0 : vram_client_open(g.socket[0] ? g.socket : NULL, &g.client);
    if (rc)
        g.client = NULL;
    return rc;
}

static int connect_vramd(spank_t sp)
{
    if (open_vramd()) {
        if (g.require_vramd) {
            slurm_error("vram: %s: vramd is not reachable (%s) and "
                        "plugstack.conf says require_vramd=yes", g.label, vram_last_error());
            return -1;
        }
        slurm_verbose("vram: no vramd on this node (%s); the step's budget is not refereed",
                      vram_last_error());
        return 0;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        slurm_error("vram: %s: pipe: %s", g.label, strerror(errno));
        return -1;
    }
    g.grant_r = fds[0];
    g.grant_w = fds[1];
    return 0;
}

/* The shim's region for each task, made before they are forked (the
 * descriptors reach every task; each lets its own through its exec). */
static int open_regions(void)
{
    setenv("VRAM_SHIM_LIBRARY", g.shim, 1);     /* where vram__enforce_open looks */
    for (unsigned t = 0; t < g.ntasks; t++) {
        int rc = vram__enforce_open(&g.region[t], enforce_names[g.mode], g.budget);
        if (rc) {
            slurm_error("vram: %s: %s (%s)", g.label, vram_last_error(), vram_errname(rc));
            return -1;
        }
        g.nregions = t + 1;
    }
    return 0;
}

static void close_regions(void)
{
    for (unsigned t = 0; t < g.nregions; t++)
        vram__enforce_close(&g.region[t]);
    g.nregions = 0;
}

/* Starts the step's thread, when it has leases to take or counts to keep. */
static int start_waiter(void)
{
    if (!g.client && !g.nregions)
        return 0;
    /* The thread starts with cancellation off; it opens it around the
     * waits alone. */
    int old_state, rc;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_state);
    rc = pthread_create(&g.waiter, NULL, waiter_main, NULL);
    pthread_setcancelstate(old_state, NULL);
    if (rc) {
        slurm_error("vram: %s: cannot start the lease's waiter: %s", g.label, strerror(rc));
        return -1;
    }
    g.waiter_started = true;
    return 0;
}

/* Stops the waiter (cancelling a wait still running) and joins it. */
static void stop_waiter(void)
{
    if (!g.waiter_started)
        return;
    pthread_cancel(g.waiter);
    pthread_join(g.waiter, NULL);
    g.waiter_started = false;
    atomic_store(&g.leases_done, true);
    /* Tasks still waiting read EOF now, and fail. */
    if (g.grant_w >= 0)
        close(g.grant_w);
    g.grant_w = -1;
}

/* Whether the step runs inside a batch step of the same job that holds a
 * lease already (its environment came down from it) at least as large as
 * the step's budget: then it inherits that lease. */
static bool inherits_lease(spank_t sp)
{
    char job[64], lease[32], want[64], budget[32];
    snprintf(want, sizeof(want), "slurm-%" PRIu32 ".", g.job);
    if (!step_getenv(sp, "VRAM_JOB", job, sizeof(job)) || strncmp(job, want, strlen(want)) ||
        !step_getenv(sp, "VRAM_LEASE", lease, sizeof(lease)) || !strcmp(lease, "0") ||
        !step_getenv(sp, "VRAM_BUDGET_BYTES", budget, sizeof(budget)) ||
        strtoull(budget, NULL, 10) < g.budget)
        return false;
    /* That environment is the job's to write: the lease it names must be
     * one this node's vramd holds (not waits for) for this job, for the
     * same user, at least as large as the step's budget.  A lease named by
     * a step on another node, or one made up, is not: the step takes its
     * own. */
    char *end;
    errno = 0;
    uint64_t id = strtoull(lease, &end, 10);
    if (*end || errno || open_vramd())
        return false;
    vram_lease_info info[256];
    size_t n = 0;
    int rc = vram_client_leases(g.client, info, sizeof(info) / sizeof(info[0]), &n);
    char holder[64];
    snprintf(holder, sizeof(holder), "slurm job %" PRIu32 " ", g.job);
    for (size_t i = 0; (!rc || rc == VRAM_ERANGE) && i < n && i < sizeof(info) / sizeof(info[0]); i++)
        if (info[i].id == id && !info[i].waiting && info[i].bytes >= g.budget && info[i].uid == geteuid() &&
            !strncmp(info[i].holder, holder, strlen(holder)))
            return true;
    return false;
}

static void release_leases(void)
{
    stop_waiter();
    for (unsigned i = 0; g.client && i < g.nleases; i++)
        if (g.lease[i])
            vram_client_release(g.client, g.lease[i]);
    g.nleases = 0;
    vram_client_close(g.client);
    g.client = NULL;
    if (g.grant_w >= 0)
        close(g.grant_w);
    if (g.grant_r >= 0)
        close(g.grant_r);
    g.grant_r = g.grant_w = -1;
}

/* The step's options as slurmstepd has them (the callbacks ran too, but
 * this does not depend on their order against slurm_spank_init). */
static int read_options(spank_t sp)
{
    char *arg = NULL;
    if (spank_option_getopt(sp, &options[0], &arg) == ESPANK_SUCCESS && arg && opt_vram(0, arg, 1))
        return -1;
    arg = NULL;
    if (spank_option_getopt(sp, &options[1], &arg) == ESPANK_SUCCESS && arg && opt_enforce(0, arg, 1))
        return -1;
    return 0;
}

/* Sizes the step, checks the shim, and takes the leases: all before any
 * task starts, so a step that cannot have its budget starts nothing.  A
 * failure here is said once (srun shows slurmstepd's errors) and each task
 * then ends with status 1 before it execs (slurm_spank_task_init): failing
 * this callback instead would leave srun saying "could not execve" and
 * exiting 0. */
static int step_init(spank_t sp)
{
    if (!spank_remote(sp))
        return 0;
    if (spank_get_item(sp, S_JOB_ID, &g.job) != ESPANK_SUCCESS ||
        spank_get_item(sp, S_JOB_STEPID, &g.step) != ESPANK_SUCCESS)
        return 0;
    char step[16];
    snprintf(g.label, sizeof(g.label), "job %" PRIu32 " step %s", g.job, step_name(step, sizeof(step)));
    if (read_options(sp))
        return -1;
    g.device = step_device(sp, &g.slurm_gpus);
    if (step_budget(sp, &g.budget))
        return -1;
    if (!g.budget)
        return 0;
    g.mode = g.enforce != ENFORCE_UNSET ? g.enforce : g.enforce_default;
    if (g.mode != ENFORCE_OFF && access(g.shim, R_OK)) {
        slurm_error("vram: %s: --vram-enforce=%s needs the shim, and "
                    "%s is not there (plugstack.conf shim=); --vram-enforce=off runs unfenced",
                    g.label, enforce_names[g.mode], g.shim);
        return -1;
    }
    g.ntasks = 1;
    if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &g.ntasks) != ESPANK_SUCCESS || !g.ntasks)
        g.ntasks = 1;
    if (g.ntasks > MAX_TASKS) {
        slurm_error("vram: %s: %u tasks on one node; a budget covers at most %d",
                    g.label, g.ntasks, MAX_TASKS);
        return -1;
    }
    g.inherited = inherits_lease(sp);
    if (g.inherited) {              /* the batch step's lease: this step holds no connection of its own */
        vram_client_close(g.client);
        g.client = NULL;
    }
    if ((g.mode != ENFORCE_OFF && open_regions()) ||
        (!g.inherited && connect_vramd(sp)) || start_waiter()) {
        release_leases();
        close_regions();
        return -1;
    }
    return 0;
}

int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
    if (spank_remote(sp) && step_init(sp))
        g.failed = true;
    return 0;
}

static void task_setenv(spank_t sp, const char *name, const char *value)
{
    spank_setenv(sp, name, value, 1);
}

/* LD_PRELOAD with the shim first, once. */
static int preload_shim(spank_t sp)
{
    char cur[16384], val[16384 + PATH_MAX + 2];
    spank_err_t e = spank_getenv(sp, "LD_PRELOAD", cur, sizeof(cur));
    if (e == ESPANK_NOSPACE) {      /* never dropped: the task's own list is kept whole, or it does not run */
        slurm_error("vram: %s: the task's LD_PRELOAD is over %zu bytes: the shim cannot be added to it",
                    g.label, sizeof(cur) - 1);
        return -1;
    }
    if (e != ESPANK_SUCCESS)
        cur[0] = '\0';
    /* Already there as an entry of its own (':' or ' ' separate them, as
     * for the loader), not as part of another path. */
    size_t n = strlen(g.shim);
    for (const char *p = cur; (p = strstr(p, g.shim)); p += n)
        if ((p == cur || p[-1] == ':' || p[-1] == ' ') && (!p[n] || p[n] == ':' || p[n] == ' '))
            return 0;
    snprintf(val, sizeof(val), "%s%s%s", g.shim, cur[0] ? ":" : "", cur);
    task_setenv(sp, "LD_PRELOAD", val);
    return 0;
}

/* In a task, before it execs: waits for the waiter's grant (Slurm can
 * kill the task meanwhile) and takes the leases from it.  -1 when there is
 * none: the step could not have its budget. */
static int read_grant(void)
{
    grant gr;
    ssize_t n;
    close(g.grant_w);               /* so that a waiter gone without a word is EOF */
    do
        n = read(g.grant_r, &gr, sizeof(gr));
    while (n < 0 && errno == EINTR);
    close(g.grant_r);
    g.grant_r = g.grant_w = -1;
    if (n != (ssize_t)sizeof(gr) || gr.status || gr.count > MAX_TASKS)
        return -1;
    g.nleases = gr.count;
    for (unsigned i = 0; i < gr.count; i++) {
        g.lease[i] = gr.lease[i];
        g.lease_device[i] = gr.device[i];
    }
    return 0;
}

/* PYTORCH_CUDA_ALLOC_CONF for the task, as `vram run` makes it: never over
 * a user's setting in either name (PyTorch 2.8+ reads PYTORCH_ALLOC_CONF
 * first), and only what the task's PyTorch accepts: VRAM_TORCH_VERSION in
 * its environment, else the probe beside the python3 on the task's PATH
 * (this is the task's own process, before it execs: its PATH and HOME may
 * be set here).  Nothing when the version cannot be read. */
static void alloc_conf(spank_t sp)
{
    char text[8192], version[64] = "", conf[256] = "";
    if (spank_getenv(sp, "PYTORCH_CUDA_ALLOC_CONF", text, sizeof(text)) != ESPANK_ENV_NOEXIST ||
        spank_getenv(sp, "PYTORCH_ALLOC_CONF", text, sizeof(text)) != ESPANK_ENV_NOEXIST)
        return;
    static const char *const names[] = { "VRAM_TORCH_VERSION", "PATH", "HOME" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (step_getenv(sp, names[i], text, sizeof(text)))
            setenv(names[i], text, 1);
        else
            unsetenv(names[i]);
    }
    if (vram_torch_version(version, sizeof(version)) != 0) {
        if (!strstr(vram_last_error(), "no PyTorch found"))
            return;                 /* "none", or a bad VRAM_TORCH_VERSION: nothing */
        version[0] = '\0';          /* not found here: taken as a recent one */
    }
    if (vram_alloc_conf(g.budget, 0, 0, version, conf, sizeof(conf)) == 0 && conf[0])
        task_setenv(sp, "PYTORCH_CUDA_ALLOC_CONF", conf);
}

/* In each task, just before it execs: its budget, its lease and the shim. */
int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
    if (!spank_remote(sp))
        return 0;
    if (g.failed)
        return -1;
    if (!g.budget)
        return 0;
    char text[64];
    int task = 0;
    if (spank_get_item(sp, S_TASK_ID, &task) != ESPANK_SUCCESS || task < 0)
        task = 0;
    if (g.grant_r >= 0 && read_grant())
        return -1;                  /* the waiter said why, in slurmstepd */
    snprintf(text, sizeof(text), "%" PRIu64, g.budget);
    task_setenv(sp, "VRAM_BUDGET_BYTES", text);
    task_setenv(sp, "VRAM_ENFORCE", enforce_names[g.mode]);
    if (!g.inherited) {
        char step[16];
        snprintf(text, sizeof(text), "slurm-%" PRIu32 ".%s", g.job, step_name(step, sizeof(step)));
        task_setenv(sp, "VRAM_JOB", text);
    }
    if (g.nleases) {
        unsigned i = (unsigned)task < g.nleases ? (unsigned)task : g.nleases - 1;
        snprintf(text, sizeof(text), "%" PRIu64, g.lease[i]);
        task_setenv(sp, "VRAM_LEASE", text);
        snprintf(text, sizeof(text), "%u", g.lease_device[i]);
        task_setenv(sp, "VRAM_DEVICE", text);
        if (!g.slurm_gpus) {        /* Slurm chose no card: vramd did */
            task_setenv(sp, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
            task_setenv(sp, "CUDA_VISIBLE_DEVICES", text);
        }
    }
    alloc_conf(sp);
    if (g.mode != ENFORCE_OFF && preload_shim(sp))
        return -1;
    if (g.mode == ENFORCE_OFF)      /* not a batch step's count, come down by env */
        spank_unsetenv(sp, "VRAM_SHIM_FD");
    if ((unsigned)task < g.nregions && vram__enforce_on(&g.region[task])) {
        vram__enforce_inherit(&g.region[task], true);
        snprintf(text, sizeof(text), "%d", g.region[task].fd);
        task_setenv(sp, "VRAM_SHIM_FD", text);
    }
    return 0;
}

/* Submission checks (local and allocator), and nothing else. */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
    spank_context_t ctx = spank_context();
    if (ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR)
        return check_submission();
    return 0;
}

/* A task has been forked (slurmstepd): the waiter names it the owner of
 * its lease once granted. */
int slurm_spank_task_post_fork(spank_t sp, int ac, char **av)
{
    int task = -1;
    pid_t pid = 0;
    if (!spank_remote(sp) || !g.waiter_started ||
        spank_get_item(sp, S_TASK_ID, &task) != ESPANK_SUCCESS || task < 0 ||
        (unsigned)task >= MAX_TASKS ||
        spank_get_item(sp, S_TASK_PID, &pid) != ESPANK_SUCCESS || pid <= 0)
        return 0;
    pthread_mutex_lock(&g.mu);
    g.task_pid[task] = pid;
    g.npids++;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    return 0;
}

/* A task ended: its lease goes back at once, before Slurm is done with
 * the step. */
int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
    int task = -1;
    if (!spank_remote(sp) || !g.client ||
        spank_get_item(sp, S_TASK_ID, &task) != ESPANK_SUCCESS || task < 0)
        return 0;
    /* A task that ends before the waiter is done with vramd died waiting
     * for its grant: the step is going, and the wait with it. */
    if (!atomic_load(&g.leases_done))
        stop_waiter();
    if ((unsigned)task < g.nleases && g.lease[task]) {
        vram_client_release(g.client, g.lease[task]);
        g.lease[task] = 0;
    }
    return 0;
}

/* The step ends, however it ends: its leases go back. */
int slurm_spank_exit(spank_t sp, int ac, char **av)
{
    if (spank_remote(sp)) {
        release_leases();
        close_regions();
    }
    return 0;
}
