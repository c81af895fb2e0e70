/* SPDX-License-Identifier: MIT */
/*
 * runner/run.c - runs one job to its end: sized, admitted, started with its
 * plan, watched, retried on the next rung after an out-of-memory, recorded.
 *
 * Owns the order of things for `vram run` (and for the daemon's jobs, whose
 * runner is `vram run`): each attempt is a rung - settings and a budget -
 * that is admitted through the one admission engine (this process's ledger,
 * or vramd's when a daemon answers), started in a process group of its own,
 * followed until the group lets go of the GPU, and written to the history.
 * The job's memory is its group's: the lease is handed to the group once it
 * exists, so the ledger does not count it twice.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ctx.h"
#include "monitor/monitor.h"
#include "plan/plan.h"
#include "runner/runner.h"
#include "sched/template.h"

extern char **environ;

/* The one piece of process state here: a signal handler must be able to
 * reach it, and nothing else can be async-signal-safe. */
static volatile sig_atomic_t interrupted;

void vram_job_interrupt(void)
{
    interrupted = 1;
}

int vram_job_interrupted(void)
{
    return interrupted != 0;
}

/* The job's PyTorch, probed ahead by vram_job_runner_warm (set once,
 * before any run, in a runner process of one job). */
static struct {
    bool done;
    int rc;
    char version[32];
} torch_ahead;

void vram_job_runner_warm(void)
{
    vram__contain_prepare();
    torch_ahead.rc = vram_torch_version(torch_ahead.version, sizeof(torch_ahead.version));
    vram__clear_error();
    torch_ahead.done = true;
}

#define MAX_KV (VRAM_RUNG_MAX_KEYS + 64)
#define GROUP_GRACE_MS 1000
#define EXITED_SAMPLE_MS 100

/* ---- one attempt's settings -------------------------------------------------- */

typedef struct attempt {
    unsigned number;                /* 1-based */
    size_t rung;                    /* 0-based rung of the ladder (or plan rung) */
    vram_kv kv[MAX_KV];             /* {key} values, later ones win */
    size_t nkv;
    uint64_t bytes;                 /* admitted with */
    vram_plan *plan;                /* with a model */
    vram_plan *chain;               /* the profile ladder's plan for this rung, when
                                       plan was made again within a smaller budget
                                       (the next rung follows on from it); or NULL */
    int device;
    uint64_t lease;
    char command[4096];             /* as run, for the history and the user */
} attempt;

typedef struct run {
    vram_ctx *ctx;                  /* the caller's, or a copy with a sim state dir */
    vram_ctx *own_ctx;
    char own_state[256];
    const vram_job_spec *spec;      /* the caller's, or daemon_spec */
    uint64_t daemon_job;            /* 0, or the vramd job this run looks after */
    vram_job_spec daemon_spec;      /* a daemon job's: the caller's, filled from its record */
    vram__record record;            /* a daemon job's, as its claim brought it */
    int claim_device;               /* the device its claim gave it; -1: none */
    vram_job_result *out;
    vram_ladder *ladder;            /* --ladder's, the profile's, or NULL: no retry */
    bool have_ladder;               /* given as text (--ladder) */
    vram_profile *profile;
    vram__admitter ad;              /* where attempts get their memory */
    vram_history *history;
    uint64_t interval_ms;
    uint64_t kill_wait_ms;          /* SIGTERM to SIGKILL (--kill-wait) */
    char last_command[4096];        /* the attempt before's, to say when it repeats */
    struct {                        /* the last attempt's context, learned once vramd knows of its end */
        bool pending;
        int device;
        uint64_t ctx_bytes, first_bytes;
    } learn;
} run;

/* A line for the user. */
#define say(r, ...) vram__say((r)->spec->say, (r)->spec->say_user, __VA_ARGS__)

static void kv_set(attempt *a, const char *key, const char *value)
{
    if (a->nkv == MAX_KV)
        return;
    vram__strlcpy(a->kv[a->nkv].key, key, sizeof(a->kv[0].key));
    vram__strlcpy(a->kv[a->nkv].value, value, sizeof(a->kv[0].value));
    a->nkv++;
}

static const char *kv_get(const attempt *a, const char *key)
{
    for (size_t i = a->nkv; i-- > 0;)
        if (!strcmp(a->kv[i].key, key))
            return a->kv[i].value;
    return NULL;
}

/* The caller's settings, then the ladder's rung (which wins). */
static int base_settings(const run *r, attempt *a)
{
    for (size_t i = 0; i < r->spec->nsettings; i++) {
        const char *s = r->spec->settings[i], *eq = strchr(s, '=');
        if (!eq || eq == s || !eq[1])
            return vram__fail(VRAM_EINVAL, "setting '%s' is not key=value", s);
        char key[32];
        if ((size_t)(eq - s) >= sizeof(key))
            return vram__fail(VRAM_EINVAL, "setting key in '%s' is too long", s);
        snprintf(key, sizeof(key), "%.*s", (int)(eq - s), s);
        kv_set(a, key, eq + 1);
    }
    const char *key, *value;
    if (r->have_ladder)
        for (size_t k = 0; k <= a->rung; k++)
            for (size_t i = 0; !vram_ladder_setting(r->ladder, k, i, &key, &value); i++)
                kv_set(a, key, value);
    return 0;
}

/* The command's {key}s are its settings', its first rung's and, with a
 * model, the plan's, and no other (sched/ladder.c says which is missing). */
static int command_check(const run *r)
{
    size_t n = r->spec->nsettings;
    char **keys = calloc(n + 1, sizeof(*keys));
    int rc = keys ? 0 : vram__fail(VRAM_ENOMEM, "out of host memory");
    for (size_t i = 0; !rc && i < n; i++) {
        const char *s = r->spec->settings[i], *eq = strchr(s, '=');
        if (!(keys[i] = strndup(s, eq ? (size_t)(eq - s) : 0)))
            rc = vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    if (!rc)
        rc = vram__template_check_command(r->spec->argv, (const char *const *)keys, n,
                                          r->have_ladder ? r->ladder : NULL, r->profile != NULL);
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    return rc;
}

/* The planner's settings of a model run: every key=value of a, in buf
 * (a->nkv rows of 192 bytes).  NULL when out of memory. */
static const char **settings_strings(const attempt *a, char (*buf)[192])
{
    const char **list = malloc((a->nkv + 1) * sizeof(*list));
    for (size_t i = 0; list && i < a->nkv; i++) {
        snprintf(buf[i], 192, "%s=%s", a->kv[i].key, a->kv[i].value);
        list[i] = buf[i];
    }
    return list;
}

/* The device to plan for when any will do: the one with the most safe room. */
static unsigned roomiest_device(vram_ctx *ctx)
{
    vram_snapshot *s;
    unsigned best = 0;
    if (vram_snapshot_take(ctx, NULL, &s))
        return 0;
    for (unsigned i = 1; i < s->ndevices; i++)
        if (s->devices[i].safe_available_bytes > s->devices[best].safe_available_bytes)
            best = i;
    vram_snapshot_free(s);
    return best;
}

/* Makes the plan of a model run's attempt and lays its settings under a's. */
static int plan_attempt(run *r, attempt *a, const vram_plan *previous)
{
    int rc;
    if (previous && !r->have_ladder) {   /* the profile's ladder: the planner applies it */
        rc = vram_plan_next_rung(previous, &a->plan);
    } else {
        char (*buf)[192] = calloc(a->nkv + 1, 192);
        const char **list = buf ? settings_strings(a, buf) : NULL;
        if (!list) {
            free(buf);
            return vram__fail(VRAM_ENOMEM, "out of host memory");
        }
        unsigned dev = r->spec->device >= 0 ? (unsigned)r->spec->device
                     : !previous && r->claim_device >= 0 ? (unsigned)r->claim_device : roomiest_device(r->ctx);
        uint64_t budget = a->bytes ? a->bytes : r->spec->vram_bytes;
        rc = vram__plan_make_for_args(r->ctx, r->profile, list, a->nkv, budget, dev,
                                      vram__args_used(r->spec->argv), &a->plan);
        free(list);
        free(buf);
    }
    if (rc)
        return rc;
    /* The plan's values first; the attempt's own settings stay on top. */
    attempt mine = *a;
    a->nkv = 0;
    const char *key, *value;
    for (size_t i = 0; !vram_plan_param_at(a->plan, i, &key, &value); i++)
        kv_set(a, key, value);
    for (size_t i = 0; i < mine.nkv; i++)
        kv_set(a, mine.kv[i].key, mine.kv[i].value);
    if (!a->bytes) {
        vram_estimate e;
        if ((rc = vram_plan_estimate(a->plan, &e)))
            return rc;
        a->bytes = e.peak_bytes;
    }
    return 0;
}

/* A model run's plan made again within `limit`: its values kept, but the
 * memory mode chosen again among those that fit (unless the attempt's own
 * settings name one).  VRAM_ENOFIT when none fits. */
static int replan_within(run *r, attempt *a, uint64_t limit)
{
    char (*buf)[192] = calloc(64, 192);
    const char **list = buf ? calloc(64, sizeof(*list)) : NULL;
    if (!list) {
        free(buf);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    size_t n = 0;
    const char *key, *value;
    bool own_mode = r->have_ladder && vram_ladder_get(r->ladder, a->rung, "memory");
    for (size_t i = 0; i < r->spec->nsettings; i++)
        own_mode = own_mode || !strncmp(r->spec->settings[i], "memory=", 7);
    for (size_t i = 0; n < 64 && !vram_plan_param_at(a->plan, i, &key, &value); i++) {
        /* duration is derived from frames here: giving both is refused */
        if (!*value || (!strcmp(key, "memory") && !own_mode) || !strcmp(key, "duration"))
            continue;
        snprintf(buf[n], 192, "%s=%s", key, value);
        list[n] = buf[n];
        n++;
    }
    unsigned dev = r->spec->device >= 0 ? (unsigned)r->spec->device : roomiest_device(r->ctx);
    vram_plan *plan;
    int rc = vram__plan_make_for_args(r->ctx, r->profile, list, n, limit, dev, vram__args_used(r->spec->argv),
                                      &plan);
    free(list);
    free(buf);
    vram_estimate e;
    if (!rc && !(rc = vram_plan_estimate(plan, &e)) && e.peak_bytes <= limit) {
        if (a->chain)
            vram_plan_free(a->plan);
        else
            a->chain = a->plan;
        a->plan = plan;
        a->bytes = e.peak_bytes;
        for (size_t i = 0; !vram_plan_param_at(plan, i, &key, &value); i++)
            if (!strcmp(key, "memory"))
                kv_set(a, key, value);
        return 0;
    }
    if (!rc)
        vram_plan_free(plan);
    return rc ? rc : VRAM_ENOFIT;
}

/* A retry never asks for more memory than the attempt before it, whatever
 * its ladder: a model's plan is made again within that budget, and what
 * still asks for more is held to it. */
static int no_more_than(run *r, attempt *a, uint64_t limit)
{
    if (!limit || a->bytes <= limit)
        return 0;
    char was[32], now[32];
    vram_size_format(limit, was, sizeof(was));
    vram_size_format(a->bytes, now, sizeof(now));
    if (a->plan && replan_within(r, a, limit) == 0)
        return 0;
    vram__clear_error();
    say(r, "rung %zu would ask for %s, more than the %s of the attempt before: it gets %s", a->rung + 1,
        now, was, was);
    a->bytes = limit;
    return 0;
}

static void drop_plans(attempt *a)
{
    vram_plan_free(a->plan);
    vram_plan_free(a->chain);
    a->plan = a->chain = NULL;
}

/* Settles rung number `rung` of the job: its settings, budget and plan. */
static int make_attempt(run *r, attempt *a, size_t rung, const attempt *previous)
{
    memset(a, 0, sizeof(*a));
    a->number = previous ? previous->number + 1 : 1;
    a->rung = rung;
    a->device = -1;
    int rc = base_settings(r, a);
    if (rc)
        return rc;
    vram_rung g = { 0, NULL };
    if (r->have_ladder)
        vram_ladder_rung(r->ladder, rung, &g);
    if (g.bytes)
        a->bytes = g.bytes;
    else if (!r->profile)
        a->bytes = r->spec->vram_bytes;
    const vram_plan *from = previous ? (previous->chain ? previous->chain : previous->plan) : NULL;
    if (r->profile && (rc = plan_attempt(r, a, from)))
        return rc;
    return previous ? no_more_than(r, a, previous->bytes) : 0;
}

/* Whether there is a rung after a's. */
static bool has_next_rung(const run *r, const attempt *a)
{
    return a->rung + 1 < vram_ladder_count(r->ladder);
}

/* "batch 8 -> 1, enhancer gfpgan -> none, budget 6.0 GiB -> 3.0 GiB" */
static void describe_change(const attempt *from, const attempt *to, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < to->nkv; i++) {
        const char *key = to->kv[i].key, *now = kv_get(to, key), *was = kv_get(from, key);
        if (now != to->kv[i].value)
            continue;               /* a later pair overrides this one */
        if (!was || strcmp(was, now))
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s %s -> %s", n ? ", " : "",
                                  key, was ? was : "(unset)", now);
    }
    if (from->bytes != to->bytes) {
        char a[32], b[32];
        vram_size_format(from->bytes, a, sizeof(a));
        vram_size_format(to->bytes, b, sizeof(b));
        snprintf(buf + n, n < cap ? cap - n : 0, "%sbudget %s -> %s", n ? ", " : "", a, b);
    }
}

/* ---- admission ------------------------------------------------------------------ */

static bool was_interrupted(void)
{
    return interrupted != 0;
}

static void say_waiting(void *user)
{
    const run *r = user;
    say(r, "waiting for GPU memory%s (through %s)...", r->spec->device >= 0 ? " on the device asked for" : "",
        vram__admit_where(&r->ad));
}

/* Gets a's memory: its lease, and the device it is on. */
static int admit(run *r, attempt *a)
{
    char need[32];
    vram_size_format(a->bytes, need, sizeof(need));
    char holder[64];
    snprintf(holder, sizeof(holder), "vram run %s", r->out->job);
    vram__lease_ask ask = {
        .bytes = a->bytes,
        .device = r->spec->device,
        .wait_ms = r->spec->wait_ms,
        .holder = holder,
        .task_class = r->spec->model ? r->spec->model : r->spec->argv[0],
        .interrupted = was_interrupted,
        .waiting = say_waiting,
        .user = r,
    };
    vram__lease_grant g;
    int rc = vram__admit(&r->ad, &ask, &g);
    if ((rc == VRAM_ETIMEDOUT || rc == VRAM_ECANCELED) && interrupted)
        rc = vram__fail(VRAM_ECANCELED, "interrupted while waiting for %s", need);
    else if (rc == VRAM_ETIMEDOUT)
        rc = vram__fail(VRAM_ETIMEDOUT, "%s for '%s' was not admitted within %lld ms", need, holder,
                        (long long)r->spec->wait_ms);
    if (rc)
        return rc;
    a->device = g.device;
    a->lease = g.lease;
    if (g.bytes && g.bytes != a->bytes)
        a->bytes = g.bytes;
    return 0;
}

/* ---- the child's environment and command line ---------------------------------- */

typedef struct env_list {
    char **vars;
    size_t n, cap;
} env_list;

/* Appends key=value, the key's klen bytes and the value's vlen joined by
 * '=' (value NULL: key already holds the whole entry, klen + 1 + vlen). */
static void env_append(env_list *e, const char *key, size_t klen, const char *value, size_t vlen)
{
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        char **p = realloc(e->vars, cap * sizeof(*p));
        if (!p)
            return;
        e->vars = p;
        e->cap = cap;
    }
    char *v = malloc(klen + vlen + 2);
    if (!v)
        return;
    if (value) {
        memcpy(v, key, klen);
        v[klen] = '=';
        memcpy(v + klen + 1, value, vlen);
    } else {
        memcpy(v, key, klen + 1 + vlen);
    }
    v[klen + 1 + vlen] = '\0';
    e->vars[e->n++] = v;
    e->vars[e->n] = NULL;
}

/* Sets key to value: every entry the key had is replaced by this one. */
static void env_put(env_list *e, const char *key, const char *value)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < e->n; i++)
        if (!strncmp(e->vars[i], key, klen) && e->vars[i][klen] == '=') {
            free(e->vars[i]);
            e->vars[i--] = e->vars[--e->n];
        }
    env_append(e, key, klen, value, strlen(value));
}

static void env_free(env_list *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->vars[i]);
    free(e->vars);
}

/* VRAM_PLAN: the plan as JSON (with a model), or the rung and budget. */
static char *plan_json(const run *r, const attempt *a, bool one_device)
{
    char *json = NULL;
    if (a->plan && !(one_device ? vram__plan_format_for_cuda(a->plan, 0, "json", &json)
                                : vram_plan_format(a->plan, "json", &json)))
        return json;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_field_string(&j, "job", r->out->job);
    vram__json_field_uint(&j, "attempt", a->number);
    vram__json_field_uint(&j, "budget_bytes", a->bytes);
    vram__json_field_int(&j, "device", a->device);
    vram__json_key(&j, "settings");
    vram__json_object_begin(&j);
    for (size_t i = 0; i < a->nkv; i++)
        if (kv_get(a, a->kv[i].key) == a->kv[i].value)
            vram__json_field_string(&j, a->kv[i].key, a->kv[i].value);
    vram__json_object_end(&j);
    vram__json_object_end(&j);
    return vram__buf_take(&b, NULL);
}

/* ---- the CUDA context's size ---------------------------------------------------------- */

/* What a context takes when nothing better is known: 300-600 MiB, more
 * with cuDNN/cuBLAS workspaces. */
#define CONTEXT_ASSUMED (512ull << 20)
/* A first usage seen above this is no context but the job's own data. */
#define CONTEXT_MAX (4ull << 30)

/* Whose context: the device (its UUID, else its name) and the program (its
 * profile; "" for a command sized by --vram), since PyTorch's context with
 * its kernels is larger than a bare CUDA program's. */
static void context_key(const run *r, const vram_device_info *in, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s", in->uuid[0] ? in->uuid : in->name,
             r->spec->model ? r->spec->model : "");
}

/* The context's size for an attempt: measured on this device for this
 * program by an earlier attempt (the shim's exact figure, else the first
 * usage NVML showed), else the profile's cuda_context_bytes, else assumed.
 * source says which ("shim", "nvml", "profile", "assumed"). */
static uint64_t context_size(const run *r, const attempt *a, const vram_device_info *in, char *source,
                             size_t cap)
{
    char key[512];
    uint64_t bytes = 0;
    context_key(r, in, key, sizeof(key));
    if (r->history && !vram__history_context(r->history, key, &bytes, source, cap) && bytes)
        return bytes;
    vram__clear_error();
    if (a->plan && (bytes = vram__plan_context_bytes(a->plan)) > 0) {
        vram__strlcpy(source, "profile", cap);
        return bytes;
    }
    vram__strlcpy(source, "assumed", cap);
    return CONTEXT_ASSUMED;
}

/* Keeps what an attempt showed of its context for the next ones. */
static void context_learn(run *r, int device, uint64_t ctx_bytes, uint64_t first_bytes)
{
    bool shown = (ctx_bytes && ctx_bytes <= CONTEXT_MAX) || (first_bytes && first_bytes <= CONTEXT_MAX);
    vram_device_info in;
    if (!shown || !r->history || device < 0 || vram_device_query(r->ctx, (unsigned)device, &in)) {
        vram__clear_error();
        return;
    }
    char key[512];
    context_key(r, &in, key, sizeof(key));
    if (ctx_bytes && ctx_bytes <= CONTEXT_MAX)
        vram__history_context_learn(r->history, key, ctx_bytes, "shim");
    else if (first_bytes && first_bytes <= CONTEXT_MAX)
        vram__history_context_learn(r->history, key, first_bytes, "nvml");
    vram__clear_error();
}

/* What the last attempt showed of its context, kept now (after the job's
 * end is told, for the last attempt: a device query and a history write
 * the next job need not wait for). */
static void learn_now(run *r)
{
    if (r->learn.pending)
        context_learn(r, r->learn.device, r->learn.ctx_bytes, r->learn.first_bytes);
    r->learn.pending = false;
}

/* The child's environment; *in gets the device as it is now (zeroed, and
 * false returned, when it cannot be read), for the rest of the start. */
static bool build_env(const run *r, const attempt *a, env_list *e, vram_device_info *in_out)
{
    memset(e, 0, sizeof(*e));
    /* Ours as they are (a key twice stays twice, as the job would get it
     * from us anyway); what is set below replaces every entry of its key. */
    for (char **v = environ; *v; v++) {
        const char *eq = strchr(*v, '=');
        if (eq)
            env_append(e, *v, (size_t)(eq - *v), NULL, strlen(eq + 1));
    }
    char text[128];
    vram_device_info in;
    memset(&in, 0, sizeof(in));
    bool known = !vram_device_query(r->ctx, (unsigned)a->device, &in);
    if (!known)
        memset(&in, 0, sizeof(in));
    bool uuid = known && (!strncmp(in.uuid, "GPU-", 4) || !strncmp(in.uuid, "MIG-", 4));
    snprintf(text, sizeof(text), "%d", a->device);
    env_put(e, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");   /* the order NVML counts in */
    env_put(e, "CUDA_VISIBLE_DEVICES", uuid ? in.uuid : text);
    /* A real job sees one device, so CUDA numbers it 0 (cuda:0); vram's own
     * index is VRAM_DEVICE_INDEX.  Simulated jobs allocate on vram's index. */
    env_put(e, "VRAM_DEVICE", uuid && !vram_ctx_is_simulated(r->ctx) ? "0" : text);
    env_put(e, "VRAM_DEVICE_INDEX", text);
    /* The context's size on this device, as measured (or the profile's):
     * what the allocator's cap leaves room for. */
    char source[16];
    uint64_t ctx_bytes = context_size(r, a, &in, source, sizeof(source));
    snprintf(text, sizeof(text), "%llu", (unsigned long long)ctx_bytes);
    env_put(e, "VRAM_CONTEXT_BYTES", text);
    env_put(e, "VRAM_CONTEXT_SOURCE", source);
    /* A user's setting wins, in either name (PyTorch 2.8+ reads
     * PYTORCH_ALLOC_CONF first); ours is only what the job's PyTorch takes. */
    if (!getenv("PYTORCH_CUDA_ALLOC_CONF") && !getenv("PYTORCH_ALLOC_CONF")) {
        char conf[256], probed[32] = "";
        const char *tv = a->plan ? vram_plan_torch_version(a->plan) : "";
        if (!*tv && torch_ahead.done)
            tv = torch_ahead.rc ? "" : torch_ahead.version;
        else if (!*tv && vram_torch_version(probed, sizeof(probed)) == 0)
            tv = probed;
        uint64_t total = uuid || vram_ctx_is_simulated(r->ctx) ? in.total_bytes : 0;
        if (vram_alloc_conf(a->bytes, total, ctx_bytes, tv, conf, sizeof(conf)))
            vram__strlcpy(conf, vram_alloc_conf_for(a->bytes), sizeof(conf));
        vram__clear_error();
        if (*conf)
            env_put(e, "PYTORCH_CUDA_ALLOC_CONF", conf);
    }
    snprintf(text, sizeof(text), "%llu", (unsigned long long)a->lease);
    env_put(e, "VRAM_LEASE", text);
    snprintf(text, sizeof(text), "%llu", (unsigned long long)a->bytes);
    env_put(e, "VRAM_BUDGET_BYTES", text);
    env_put(e, "VRAM_JOB", r->out->job);
    if (r->daemon_job) {            /* vramd's mark: it finds them should this runner die (daemon/stop.c) */
        static _Atomic int me;      /* this process's start, read once (a reused runner's next jobs) */
        static _Atomic uint64_t started_at;
        pid_t self = getpid();
        uint64_t my_start = atomic_load_explicit(&started_at, memory_order_relaxed);
        if (atomic_load_explicit(&me, memory_order_relaxed) != (int)self || !my_start) {
            my_start = vram__proc_start_ticks((uint32_t)self);
            atomic_store_explicit(&started_at, my_start, memory_order_relaxed);
            atomic_store_explicit(&me, (int)self, memory_order_relaxed);
        }
        snprintf(text, sizeof(text), "%llu.%ld.%llu", (unsigned long long)r->daemon_job, (long)self,
                 (unsigned long long)my_start);
        env_put(e, "VRAMD_JOB", text);
    }
    snprintf(text, sizeof(text), "%u", a->number);
    env_put(e, "VRAM_ATTEMPT", text);
    char *json = plan_json(r, a, uuid && !vram_ctx_is_simulated(r->ctx));
    if (json)
        env_put(e, "VRAM_PLAN", json);
    free(json);
    if (vram_ctx_is_simulated(r->ctx)) {  /* the job allocates on the same cards */
        const vram_options *o = vram_ctx_options(r->ctx);
        env_put(e, "VRAM_BACKEND", "sim");
        env_put(e, "VRAM_SIM", vram_options_get(o, "sim"));
        env_put(e, "VRAM_SIM_STATE", vram_options_get(o, "sim-state"));
    }
    *in_out = in;
    return known;
}

/* The spec's enforcement: a version-1 spec has none (and no such field). */
static const char *enforce_of(const vram_job_spec *s)
{
    return s->version >= 2 ? s->enforce : NULL;
}

static void put_env(void *user, const char *key, const char *value)
{
    env_put(user, key, value);
}

/* argv with every {key} given its value, never as shell text (shellarg.c);
 * also the command as one line. */
static int build_argv(const run *r, attempt *a, char ***argv_out)
{
    return vram__argv_expand(r->spec->argv, a->kv, a->nkv, argv_out, a->command, sizeof(a->command));
}

/* ---- running and watching ------------------------------------------------------- */

/* The timeline and the child come last: watched_reset zeroes what is
 * before them and resets them, their buffers left as they are. */
typedef struct watched {
    uint64_t started_ms, ended_ms;
    bool canceled;
    bool timed_out;                 /* stopped at its time limit */
    bool not_admitted;              /* it failed before its command was tried */
    vram_oom_report oom;
    bool oom_seen;
    vram__enforce enforce;          /* the shim's region, when enforcing */
    uint64_t over_bytes;
    uint64_t first_bytes;           /* its processes' first usage seen (per process, not the
                                       device's): soon after the context, an upper bound of it */
    uint64_t ctx_bytes;             /* the context as the shim measured it; 0: not */
    uint64_t baseline;              /* the device's used bytes at the start; UINT64_MAX: unknown */
    uint64_t elsewhere_said;        /* devices (bit i: device i) it was said to use past its lease's */
    vram__timeline tl;
    vram__child child;
} watched;

static void watched_reset(watched *w)
{
    memset(w, 0, offsetof(watched, tl));
    vram__timeline_reset(&w->tl);
    vram__child_reset(&w->child);
}

/* How far the job says it is, from the last progress bar on its stderr:
 * tqdm's "37%|" (what these pipelines print), or a line "vram-progress: 0.37".
 * Negative when it said nothing. */
static double tail_progress(const vram__child *c)
{
    size_t from = c->tail_len > 512 ? c->tail_len - 512 : 0;
    double found = -1;
    for (size_t i = from; i < c->tail_len; i++) {
        if (c->tail[i] == '%' && i + 1 < c->tail_len && c->tail[i + 1] == '|') {
            size_t k = i;
            while (k > from && c->tail[k - 1] >= '0' && c->tail[k - 1] <= '9' && i - k < 3)
                k--;
            if (k < i)
                found = atoi(c->tail + k) / 100.0;
        } else if (c->tail_len - i > 15 && !strncmp(c->tail + i, "vram-progress:", 14)) {
            char num[16];
            size_t n = 0;
            for (size_t k = i + 14; k < c->tail_len && n + 1 < sizeof(num) && c->tail[k] != '\n'; k++)
                num[n++] = c->tail[k];
            num[n] = '\0';
            found = atof(num);
        }
    }
    return found > 1 ? 1 : found;
}

/* In a container without --pid=host the driver lists host pids, which no
 * process group here holds: the group's usage reads 0.  Then the attempt is
 * accounted from its device, per lease: what the device's used memory grew
 * by since the attempt began, up to the attempt's budget. */
static bool device_fallback(const run *r, const attempt *a, uint64_t baseline, uint64_t *bytes)
{
    vram_proc procs[64];
    size_t n = 0;
    int rc = vram_device_processes(r->ctx, (unsigned)a->device, procs, 64, &n);
    bool foreign = false;
    for (size_t i = 0; (!rc || rc == VRAM_ERANGE) && i < n && i < 64; i++)
        foreign |= (procs[i].have & VRAM_HAVE_PROC_FOREIGN) != 0;
    vram_device_info in;
    if (!foreign || vram_device_query(r->ctx, (unsigned)a->device, &in)) {
        vram__clear_error();
        return false;
    }
    uint64_t grew = in.used_bytes > baseline ? in.used_bytes - baseline : 0;
    *bytes = grew < a->bytes ? grew : a->bytes;
    return true;
}

/* A job is given its one GPU as CUDA's device 0 (CUDA_VISIBLE_DEVICES); a
 * command that chooses its GPU itself may run on another, one other jobs
 * were admitted to and that its lease is not on.  Said once a device, with
 * what it holds there (its budget still counts what the shim sees). */
static void check_elsewhere(run *r, const attempt *a, watched *w)
{
    uint64_t per_dev[VRAM_MAX_DEVICES];
    unsigned ndev;
    if (a->device < 0 || vram__contain_usage_by_device(r->ctx, w->child.pid, per_dev, VRAM_MAX_DEVICES, &ndev)) {
        vram__clear_error();
        return;
    }
    _Static_assert(VRAM_MAX_DEVICES <= 64, "elsewhere_said has a bit a device");
    for (unsigned dev = 0; dev < ndev && dev < VRAM_MAX_DEVICES; dev++) {
        if (dev == (unsigned)a->device || !per_dev[dev] || (w->elsewhere_said >> dev & 1))
            continue;
        w->elsewhere_said |= 1ull << dev;
        char held[32];
        vram_size_format(per_dev[dev], held, sizeof(held));
        say(r, "attempt %u: its processes hold %s on GPU %u, where it has no lease (its lease is on GPU %d, "
            "given to it as CUDA device 0): does the command choose its GPU itself (CUDA_VISIBLE_DEVICES)?",
            a->number, held, dev, a->device);
    }
}

/* The job's device bytes now: the shim's count when it enforces (exact, and
 * where NVML gives no per-process numbers), else NVML's. */
static bool sample_usage(run *r, watched *w, uint64_t *bytes)
{
    if (vram__enforce_on(&w->enforce)) {
        vram__enforce_count c;
        vram__enforce_read(&w->enforce, &c);
        *bytes = c.used_bytes;
        if (c.ctx_bytes)
            w->ctx_bytes = c.ctx_bytes;
        if (c.cuda_seen)
            return true;
    }
    if (vram__contain_usage(r->ctx, w->child.pid, bytes))
        return false;
    if (!w->first_bytes)
        w->first_bytes = *bytes;
    return true;
}

/* Follows the child until every process it started is gone (contain.c).
 * When the command exits, the processes it left that hold GPU memory are
 * followed to their end (the job is not over while they hold it); once
 * none has held any for a grace second, those left are stopped (SIGTERM,
 * then SIGKILL after --kill-wait, as Slurm ends what a job script leaves).
 * A cancel or the time limit stops them all the same way.
 * It samples every interval, the first an interval after the start (at
 * the start the command holds nothing yet: a job shorter than that costs
 * no sample, no device read), and at once when the child exits leaving
 * processes (the wait wakes on its end), so the next job waits for this
 * one's end to be noticed. */
static void watch(run *r, attempt *a, watched *w)
{
    uint64_t t0 = vram__now_ms(), next_sample = t0 + r->interval_ms, term_at = 0, left_at = 0, idle_since = 0;
    uint64_t next_progress = t0;
    uint64_t next_usage = t0;
    uint64_t next_elsewhere = t0 + r->interval_ms;
    double last_progress = -1;
    uint64_t baseline = w->baseline;   /* the device's use just before the start */
    bool exit_seen = false;
    for (;;) {
        uint64_t now = vram__now_ms();
        int wait = next_sample > now ? (int)(next_sample - now) : 0;
        bool exited = vram__child_wait(&w->child, wait);
        if (interrupted && !term_at) {
            w->canceled = true;
            term_at = vram__now_ms();
            vram__child_signal(&w->child, SIGTERM);
        }
        if (r->spec->time_limit_ms && !term_at && vram__now_ms() - t0 >= r->spec->time_limit_ms) {
            w->timed_out = true;
            term_at = vram__now_ms();
            say(r, "attempt %u reached its time limit (%llu s): stopping every process it started (SIGTERM, "
                "SIGKILL after %.1f s)", a->number, (unsigned long long)(r->spec->time_limit_ms / 1000),
                (double)r->kill_wait_ms / 1000.0);
            vram__child_signal(&w->child, SIGTERM);
        }
        if (term_at && vram__now_ms() - term_at > r->kill_wait_ms)
            vram__child_signal(&w->child, SIGKILL);
        now = vram__now_ms();
        /* The command gone and every process it started gone too: the
         * job is over now.  No last sample: its group holds nothing any
         * more (the shim's peak is read below), and the next job waits. */
        if (exited && !vram__child_group_alive(&w->child)) {
            if (!w->ended_ms)
                w->ended_ms = vram__unix_ms();
            break;
        }
        if (now < next_sample && (!exited || exit_seen))
            continue;
        exit_seen = exited;
        uint64_t interval = exited && r->interval_ms > EXITED_SAMPLE_MS ? EXITED_SAMPLE_MS : r->interval_ms;
        next_sample = now + interval;
        if (r->ad.job && now >= next_progress) {
            next_progress = now + 1000;
            vram__admit_owner_again(&r->ad);
            double p = tail_progress(&w->child);
            if (p >= 0 && p != last_progress)
                vram__admit_progress(&r->ad, p);
            last_progress = p;
        }
        if (now >= next_elsewhere) {
            next_elsewhere = now + (r->interval_ms > 1000 ? r->interval_ms : 1000);
            check_elsewhere(r, a, w);
        }
        uint64_t bytes = 0;
        bool sampled = sample_usage(r, w, &bytes);
        if (bytes == 0 && baseline != UINT64_MAX && !vram_ctx_is_simulated(r->ctx))
            sampled = device_fallback(r, a, baseline, &bytes) || sampled;
        if (r->ad.job && now >= next_usage && vram__enforce_on(&w->enforce)) {
            next_usage = now + 1000;        /* vramd shows the shim's count */
            vram__enforce_count c;
            vram__enforce_read(&w->enforce, &c);
            if (c.cuda_seen)
                vram__admit_usage(&r->ad, c.used_bytes, c.over_bytes);
        }
        if (sampled)
            vram__timeline_add(&w->tl, now - t0, bytes);
        exited = vram__child_exited(&w->child);
        if (exited && !w->ended_ms)
            w->ended_ms = vram__unix_ms();
        /* Done once the command has exited and every process it started is
         * gone; those it left (also ones that called setsid) are stopped. */
        if (exited && !vram__child_group_alive(&w->child))
            break;
        if (!exited || (sampled && bytes > 0))
            idle_since = 0;
        else if (!idle_since)
            idle_since = now;
        if (exited && !left_at && !term_at && idle_since && now - idle_since >= GROUP_GRACE_MS) {
            left_at = now;
            size_t n = vram__contain_signal(w->child.pid, SIGTERM);
            say(r, "attempt %u: the command exited; stopping the %zu process%s it left (%s)", a->number, n,
                n == 1 ? "" : "es", vram__contain_kind(w->child.pid));
        } else if (exited && left_at && now - left_at > r->kill_wait_ms) {
            vram__child_signal(&w->child, SIGKILL);
        }
    }
    bool stderr_open = w->child.err_fd >= 0;
    while (stderr_open && !vram__child_pump(&w->child, 50))
        ;                           /* what it wrote last */
    vram__timeline_flush(&w->tl);
    if (vram__enforce_on(&w->enforce)) {   /* the peak between samples too */
        vram__enforce_count c;
        vram__enforce_read(&w->enforce, &c);
        if (c.cuda_seen && c.peak_bytes > w->tl.peak)
            w->tl.peak = c.peak_bytes;
        if (c.ctx_bytes)
            w->ctx_bytes = c.ctx_bytes;
        w->over_bytes = c.over_bytes;
        if (r->ad.job && c.cuda_seen)       /* vramd keeps the last word on the overage */
            vram__admit_usage(&r->ad, c.used_bytes, c.over_bytes);
    }
    w->oom_seen = vram_oom_parse(w->child.tail, w->child.tail_len, &w->oom) == 1;
    (void)a;
}

static const char *outcome_of(const watched *w, int code, bool started)
{
    if (!started)
        return "not-started";
    if (w->canceled)
        return "canceled";
    if (w->timed_out)
        return "timeout";
    if (code == 0)
        return "ok";
    if (w->oom_seen)
        return "oom";
    if (code > 128 && WIFSIGNALED(w->child.status))
        return "signal";
    return "failed";
}

/* ---- the history ------------------------------------------------------------------ */

/* The settings as recorded: what the estimator can take back (for
 * calibration), so a planned run's derived duration (frames / fps) is left
 * out beside its frames. */
static char *settings_json(const attempt *a)
{
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    bool derived_duration = a->plan && kv_get(a, "frames");
    for (size_t i = 0; i < a->nkv; i++)
        if (kv_get(a, a->kv[i].key) == a->kv[i].value &&
            !(derived_duration && !strcmp(a->kv[i].key, "duration"))) {
            vram__json_field_string(&j, a->kv[i].key, a->kv[i].value);
        }
    vram__json_object_end(&j);
    return vram__buf_take(&b, NULL);
}

static void record(run *r, const attempt *a, const watched *w, const char *outcome, int code,
                   const char *note)
{
    if (!r->history)
        return;
    char *settings = settings_json(a);
    vram_run_record rec = {
        .attempt = a->number,
        .started_unix_ms = w->started_ms,
        .duration_ms = w->ended_ms > w->started_ms ? w->ended_ms - w->started_ms : 0,
        .command = a->command,
        .profile = r->spec->model ? r->spec->model : "",
        .settings = settings ? settings : "{}",
        .device = a->device,
        .estimate_bytes = a->bytes,
        .peak_bytes = w->tl.peak,
        .outcome = outcome,
        .exit_status = code,
        .oom_tried_bytes = w->oom_seen ? w->oom.tried_bytes : 0,
        .note = note ? note : "",
        .timeline = w->tl.pts,
        .ntimeline = w->tl.n,
        .over_bytes = w->over_bytes,
    };
    vram__strlcpy(rec.job, r->out->job, sizeof(rec.job));
    int rc = vram_history_add(r->history, &rec);
    free(settings);
    if (rc) {
        r->out->record_error = rc;
        vram__strlcpy(r->out->record_message, vram_last_error(), sizeof(r->out->record_message));
        say(r, "could not record attempt %u in the history: %s", a->number, r->out->record_message);
        return;
    }
    if (!r->out->first_run)
        r->out->first_run = rec.id;
    r->out->last_run = rec.id;
}

/* ---- one attempt, start to end -------------------------------------------------------- */

/* build_argv over the command with {args} as the plan's flags (args.c),
 * one argv word each (the spec is the run's again after). */
static int build_command(run *r, attempt *a, char ***argv_out)
{
    char **spliced = NULL;
    int rc = vram__args_splice(r->spec->argv, a->plan, &spliced);
    if (rc || !spliced)
        return rc ? rc : build_argv(r, a, argv_out);
    const vram_job_spec *own = r->spec;
    vram_job_spec spec = *own;
    spec.argv = spliced;
    r->spec = &spec;
    rc = build_argv(r, a, argv_out);
    r->spec = own;
    vram__args_free(spliced);
    return rc;
}

/* Whether b would run the very command a ran: with {args}, the pipeline
 * takes its settings from its command line alone, so a rung that leaves
 * it as it was would only run out of memory again. */
static bool same_command(run *r, attempt *a, attempt *b)
{
    char **x = NULL, **y = NULL;
    char keep[sizeof(a->command)];
    memcpy(keep, a->command, sizeof(keep));
    bool same = !build_command(r, a, &x) && !build_command(r, b, &y);
    for (size_t i = 0; same && (x[i] || y[i]); i++)
        same = x[i] && y[i] && !strcmp(x[i], y[i]);
    memcpy(a->command, keep, sizeof(keep));
    vram__args_free(x);
    vram__args_free(y);
    return same;
}

/* Runs attempt a; returns 0 when it ran (w and the result say how), or the
 * error that kept it from being admitted. */
static int run_attempt(run *r, attempt *a, watched *w)
{
    int rc = admit(r, a);
    if (rc) {
        w->not_admitted = true;
        return rc;
    }
    char **argv = NULL;
    env_list env;
    memset(&env, 0, sizeof(env));
    rc = build_command(r, a, &argv);
    if (!rc && *r->last_command && !strcmp(r->last_command, a->command))
        say(r, "attempt %u runs the same command as the one before: what rung %zu changes reaches the "
            "job only through VRAM_PLAN and VRAM_BUDGET_BYTES", a->number, a->rung + 1);
    if (!rc)
        vram__strlcpy(r->last_command, a->command, sizeof(r->last_command));
    if (!rc)
        rc = vram__enforce_open(&w->enforce, enforce_of(r->spec), a->bytes);
    if (!rc) {
        vram_device_info in;       /* one look at the device for the whole start */
        bool known = build_env(r, a, &env, &in);
        vram__clear_error();
        w->baseline = known && a->device >= 0 ? in.used_bytes : UINT64_MAX;
        vram__enforce_env(&w->enforce, put_env, &env);
        /* The job's one device is its CUDA ordinal 0 (CUDA_VISIBLE_DEVICES);
         * a job that sees more (it changed that variable) has no budget on
         * the others, which are other jobs' cards. */
        vram__enforce_card_free(&w->enforce, 0, in.free_bytes);
        for (int d = 1; d < VRAM__ENFORCE_DEVICES; d++)
            vram__enforce_budget(&w->enforce, d, 0);
        char budget[32];
        vram_size_format(a->bytes, budget, sizeof(budget));
        say(r, "attempt %u: %s on GPU %d (%s) with %s%s%s", a->number, a->command, a->device,
            in.name, budget, a->plan && *vram_plan_tier(a->plan) ? ", tier " : "",
            a->plan ? vram_plan_tier(a->plan) : "");
        w->started_ms = vram__unix_ms();
        vram__enforce_inherit(&w->enforce, true);
        rc = vram__child_start(argv, env.vars, true, &w->child);
        vram__enforce_inherit(&w->enforce, false);
    }
    if (rc) {
        w->ended_ms = vram__unix_ms();
        vram__admit_release(&r->ad, a->lease);
    } else {
        vram__admit_owner(&r->ad, a->lease, (uint32_t)w->child.pid, (uint32_t)w->child.pid);
        watch(r, a, w);
        vram__admit_release(&r->ad, a->lease);
    }
    vram__enforce_close(&w->enforce);
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
    env_free(&env);
    return rc;
}

/* ---- the job ---------------------------------------------------------------------------- */

static int check_spec(const run *r)
{
    const vram_job_spec *s = r->spec;
    if (!s->argv || !s->argv[0] || !*s->argv[0])
        return vram__fail(VRAM_EINVAL, "no command to run (give it after --)");
    uint64_t first;
    int rc = r->have_ladder ? vram_ladder_first_budget(r->ladder, s->vram_bytes, &first) : 0;
    if (rc)
        return rc;
    vram_rung g = { 0, NULL };
    vram_ladder_rung(r->ladder, 0, &g);
    if (!s->vram_bytes && !s->model && !(r->have_ladder && g.bytes))
        return vram__fail(VRAM_EINVAL, "a job needs a budget (--vram SIZE, or vram= on every rung of "
                          "its ladder) or a model to plan from (--model NAME)");
    return 0;
}

/* On simulated cards the job must allocate where we look: give the run a
 * private state directory when the context has none. */
static int share_sim_state(run *r)
{
    const char *state = vram_options_get(vram_ctx_options(r->ctx), "sim-state");
    if (!vram_ctx_is_simulated(r->ctx) || (state && *state))
        return 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(r->own_state, sizeof(r->own_state), "%s/vram-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(r->own_state))
        return vram__fail(VRAM_EIO, "cannot make a folder for the simulated cards: %s", strerror(errno));
    vram_options *o;
    int rc = vram__options_clone(vram_ctx_options(r->ctx), &o);
    if (!rc)
        rc = vram_options_set(o, "sim-state", r->own_state, NULL);
    if (!rc)
        rc = vram_ctx_open(&r->own_ctx, o);
    vram_options_free(o);
    if (rc) {
        rmdir(r->own_state);
        r->own_state[0] = '\0';
        return rc;
    }
    r->ctx = r->own_ctx;
    return 0;
}

static void job_name(const vram_job_spec *s, uint64_t daemon_job, char *buf, size_t cap)
{
    if (s->name && *s->name) {
        vram__strlcpy(buf, s->name, cap);
        return;
    }
    if (daemon_job) {
        snprintf(buf, cap, "vramd-%llu", (unsigned long long)daemon_job);
        return;
    }
    /* Time for people, random bits so two runs in one second never share
     * a name (pids repeat quickly in small pid namespaces). */
    time_t now = time(NULL);
    struct tm tm;
    char when[32];
    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y%m%d-%H%M%S", &tm);
    unsigned short rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (unsigned short)(vram__now_ns() ^ (uint64_t)getpid());
    snprintf(buf, cap, "run-%.15s-%04x", when, rnd);
}

/* An asked-for enforcement that cannot be had stops the job before it runs. */
static int check_enforce(const run *r)
{
    int mode;
    char path[4096];
    const char *e = enforce_of(r->spec);
    if (!e || !*e)
        return 0;
    int rc = vram__enforce_mode(e, &mode);
    if (!rc && strcmp(e, "off") && (rc = vram__enforce_find_shim(path, sizeof(path)))) {
        char why[512];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return vram__fail(rc, "cannot enforce '%s': %s", e, why);
    }
    return rc;
}

/* A daemon job's runner claims its job first: the claim's reply brings the
 * job's record (command, model, settings, ladder, name) and the budget it
 * was admitted with, sized once by vramd; they become the spec this run
 * follows.  The caller's spec gives only the job's number and where to
 * record it. */
static int claim_job(run *r)
{
    int rc = vram__admit_open(&r->ad, r->ctx, r->daemon_job);
    vram__lease_grant g;
    if (!rc)
        rc = vram__admit_claim(&r->ad, &r->record, &g);
    if (rc)
        return rc;
    vram_job_spec *s = &r->daemon_spec;
    *s = *r->spec;
    s->argv = r->record.argv;
    s->model = *r->record.model ? r->record.model : NULL;
    s->settings = (const char *const *)r->record.settings;
    s->nsettings = r->record.nsettings;
    s->ladder = *r->record.ladder ? r->record.ladder : NULL;
    s->name = *r->record.name ? r->record.name : r->spec->name;
    s->vram_bytes = g.bytes;
    if (r->record.time_limit_ms)
        s->time_limit_ms = r->record.time_limit_ms;
    r->claim_device = g.device;
    r->spec = s;
    job_name(s, r->daemon_job, r->out->job, sizeof(r->out->job));
    return 0;
}

/* A reused runner's history, kept open from one job to the next (set and
 * taken only by vram_job_run_daemon_job with a next job: vramd's runner,
 * one job at a time). */
static struct {
    vram_history *h;
    char path[4096];                /* as the spec named it; "" for the default */
} kept_history;

/* The history the run is recorded in, opened before a daemon job's claim
 * (a runner started ahead waits in its claim: the open is not on the way
 * from the turn to the command's start), or the one kept open. */
static void open_history(run *r)
{
    const char *path = r->spec->history ? r->spec->history : "";
    vram_history *kept = kept_history.h;
    kept_history.h = NULL;
    if (kept && !strcmp(kept_history.path, path)) {
        r->history = kept;
        return;
    }
    vram_history_close(kept);
    if (!strcmp(path, "-"))
        return;
    if (vram_history_open(r->spec->history, &r->history)) {
        r->out->record_error = VRAM_EIO;
        vram__strlcpy(r->out->record_message, vram_last_error(), sizeof(r->out->record_message));
        say(r, "the job runs, but cannot be recorded: %s", r->out->record_message);
    }
}

static int open_everything(run *r)
{
    open_history(r);
    int rc = r->daemon_job ? claim_job(r) : 0;
    if (!rc && r->spec->ladder && *r->spec->ladder) {
        rc = vram_ladder_parse(r->spec->ladder, &r->ladder);
        r->have_ladder = !rc;
    }
    if (!rc)
        rc = check_spec(r);
    if (!rc)
        rc = check_enforce(r);
    if (!rc && r->spec->model)
        rc = vram_profile_load(vram_ctx_options(r->ctx), r->spec->model, &r->profile);
    if (!rc && r->have_ladder)      /* a rung that changes nothing is no rung */
        rc = vram_ladder_check_command(r->ladder, r->spec->argv, r->profile);
    if (!rc && r->profile && !r->have_ladder)
        rc = vram_ladder_from_profile(r->profile, &r->ladder);
    if (!rc)
        rc = share_sim_state(r);
    if (!rc && !r->daemon_job)
        rc = vram__admit_open(&r->ad, r->ctx, 0);
    if (rc)
        return rc;
    vram_duration_parse(vram_options_get(vram_ctx_options(r->ctx), "interval"), 1, &r->interval_ms);
    vram_duration_parse(vram_options_get(vram_ctx_options(r->ctx), "kill-wait"), 1, &r->kill_wait_ms);
    return 0;
}

static void close_everything(run *r)
{
    vram_history_close(r->history);
    vram__admit_close(&r->ad);
    vram__record_free(&r->record);
    vram_profile_free(r->profile);
    vram_ladder_free(r->ladder);
    if (r->own_ctx)
        vram_ctx_close(r->own_ctx);
    if (r->own_state[0] && vram__remove_tree(r->own_state))
        vram__log(VRAM__LOG_WARN, "could not remove %s: %s", r->own_state, strerror(errno));
}

/* Says what the attempt came to; returns true when another rung follows. */
static bool conclude(run *r, const attempt *a, const watched *w, const char *outcome, int code)
{
    char peak[32];
    vram_size_format(w->tl.peak, peak, sizeof(peak));
    bool again = !strcmp(outcome, "oom") && has_next_rung(r, a);
    if (!strcmp(outcome, "oom")) {
        char tried[192] = "";
        if (w->oom.tried_bytes && w->oom.allowed_bytes) {
            /* Under a memory-fraction cap the room was what was allowed
             * less what PyTorch held (torch 2 says allocated and reserved
             * apart, torch 1 the total), not the device's free. */
            const vram_oom_report *o = &w->oom;
            uint64_t held = o->reserved_bytes + (o->source == VRAM_OOM_PYTORCH ? o->allocated_bytes : 0);
            char t[32], f[32], l[32];
            vram_size_format(o->tried_bytes, t, sizeof(t));
            vram_size_format(o->allowed_bytes > held ? o->allowed_bytes - held : 0, f, sizeof(f));
            vram_size_format(o->allowed_bytes, l, sizeof(l));
            snprintf(tried, sizeof(tried), ": tried to allocate %s with %s left of the %s allowed "
                     "(memory-fraction cap)", t, f, l);
        } else if (w->oom.tried_bytes) {
            char t[32], f[32];
            vram_size_format(w->oom.tried_bytes, t, sizeof(t));
            vram_size_format(w->oom.free_bytes, f, sizeof(f));
            snprintf(tried, sizeof(tried), ": tried to allocate %s with %s free", t, f);
        }
        say(r, "attempt %u ran out of GPU memory%s (peak %s)%s", a->number, tried, peak,
            again ? "" : "; no cheaper rung is left");
    } else if (!strcmp(outcome, "ok")) {
        say(r, "attempt %u finished (peak %s)", a->number, peak);
    } else if (!strcmp(outcome, "canceled")) {
        say(r, "attempt %u was canceled (peak %s)", a->number, peak);
    } else if (!strcmp(outcome, "timeout")) {
        say(r, "attempt %u was stopped at its time limit (peak %s)", a->number, peak);
    } else {
        say(r, "attempt %u %s with status %d (peak %s)", a->number,
            !strcmp(outcome, "signal") ? "was killed" : "failed", code, peak);
    }
    if (w->tl.n >= 8) {
        uint64_t *v = malloc(w->tl.n * sizeof(*v));
        vram_trend t;
        for (size_t i = 0; v && i < w->tl.n; i++)
            v[i] = w->tl.pts[i].bytes;
        if (v && !vram_trend_fit(v, w->tl.n, 0, &t) && t.leaking) {
            char text[256];
            vram_trend_describe(&t, "sample", text, sizeof(text));
            say(r, "memory of attempt %u was %s: a leak?", a->number, text);
        }
        free(v);
    }
    return again;
}

/* Records and reports one attempt that ran (or could not start); returns
 * true when the job goes on to the next rung. */
static bool finish_attempt(run *r, const attempt *a, watched *w, bool started)
{
    vram_job_result *out = r->out;
    int code = started ? vram__child_exit_code(&w->child) : 127;
    const char *outcome = outcome_of(w, code, started);
    char note[256] = "";
    if (!started)
        vram__strlcpy(note, vram_last_error(), sizeof(note));
    else if (w->oom_seen)
        vram__strlcpy(note, w->oom.line, sizeof(note));
    /* The attempt's row first: whoever hears of the job's end finds it. */
    record(r, a, w, outcome, code, note);
    if (started) {
        r->learn.pending = true;
        r->learn.device = a->device;
        r->learn.ctx_bytes = w->ctx_bytes;
        r->learn.first_bytes = w->first_bytes;
    }
    vram__child_close(&w->child);
    out->attempts = a->number;
    out->device = a->device;
    out->exit_status = code;
    vram__strlcpy(out->outcome, outcome, sizeof(out->outcome));
    if (w->tl.peak > out->peak_bytes)
        out->peak_bytes = w->tl.peak;
    if (w->over_bytes > out->over_bytes)
        out->over_bytes = w->over_bytes;
    if (w->over_bytes) {
        char over[32];
        vram_size_format(w->over_bytes, over, sizeof(over));
        say(r, "attempt %u went %s past its budget (--enforce soft let it through)", a->number, over);
    }
    if (!started) {
        say(r, "%s", note);
        return false;
    }
    bool again = conclude(r, a, w, outcome, code);
    if (again)                      /* the next attempt's environment uses it */
        learn_now(r);
    return again;
}

int vram_job_run(vram_ctx *ctx, const vram_job_spec *spec, vram_job_result *out)
{
    return vram_job_run_for_daemon(ctx, spec, 0, out);
}

int vram_job_run_for_daemon(vram_ctx *ctx, const vram_job_spec *spec, uint64_t daemon_job,
                            vram_job_result *out)
{
    return vram_job_run_daemon_job(ctx, spec, daemon_job, out, NULL);
}

int vram_job_run_daemon_job(vram_ctx *ctx, const vram_job_spec *spec, uint64_t daemon_job,
                            vram_job_result *out, vram_job_next *then)
{
    if (then)
        memset(then, 0, sizeof(*then));
    if (!ctx || !spec || !out)
        return vram__fail(VRAM_EINVAL, "vram_job_run: NULL argument");
    memset(out, 0, sizeof(*out));
    if (vram__check_version("vram_job_spec", spec->version, VRAM_JOB_SPEC_VERSION))
        return VRAM_EINVAL;
    out->device = -1;
    job_name(spec, daemon_job, out->job, sizeof(out->job));
    if (!then)
        interrupted = 0;
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    run r = { .ctx = ctx, .spec = spec, .daemon_job = daemon_job, .out = out, .claim_device = -1 };
    /* This attempt and the one before (to say what changed); about 100 KiB
     * with the watch, so on the heap. */
    attempt *slots = calloc(2, sizeof(*slots));
    watched *w = malloc(sizeof(*w));
    int rc = slots && w ? open_everything(&r) : vram__fail(VRAM_ENOMEM, "out of host memory");
    attempt *a = slots;
    if (!rc)                        /* {args} needs a model, and stands alone */
        rc = vram__args_check(r.spec->argv, r.profile);
    if (!rc)                        /* every {key} has a value: said before any wait */
        rc = command_check(&r);
    if (!rc)
        rc = make_attempt(&r, a, 0, NULL);
    while (!rc) {
        watched_reset(w);
        rc = run_attempt(&r, a, w);
        bool started = rc == 0;
        attempt *next = a == &slots[0] ? &slots[1] : &slots[0];
        if (rc == VRAM_ETIMEDOUT && w->not_admitted && !interrupted && has_next_rung(&r, a)) {
            /* A rung that cannot be admitted within its wait steps down. */
            char need[32];
            vram_size_format(a->bytes, need, sizeof(need));
            say(&r, "rung %zu (%s) was not admitted within %lld ms; trying rung %zu", a->rung + 1, need,
                (long long)spec->wait_ms, a->rung + 2);
            vram__clear_error();
            drop_plans(next);
            if ((rc = make_attempt(&r, next, a->rung + 1, a)))
                break;
            char change[512];
            describe_change(a, next, change, sizeof(change));
            say(&r, "rung %zu: %s", next->rung + 1, *change ? change : "same settings");
            a = next;
            continue;
        }
        if (rc && (w->not_admitted || (rc != VRAM_ENOENT && rc != VRAM_EPERM && rc != VRAM_EIO)))
            break;                  /* not admitted, or a bad template: nothing ran */
        rc = 0;
        if (!finish_attempt(&r, a, w, started))
            break;
        drop_plans(next);
        if ((rc = make_attempt(&r, next, a->rung + 1, a)))
            break;
        /* With {args}, a rung that leaves the command as it was is passed
         * over: the pipeline would only run out of memory again. */
        bool none_left = false;
        while (!rc && vram__args_used(r.spec->argv) && same_command(&r, a, next)) {
            if (!has_next_rung(&r, next)) {
                say(&r, "rung %zu makes the same command again: no cheaper rung is left", next->rung + 1);
                none_left = true;
                break;
            }
            say(&r, "rung %zu passed over: it makes the same command as attempt %u", next->rung + 1,
                a->number);
            /* The next rung goes on from a's settings: a rung passed over
             * counts for nothing, in the command or in the estimate (a
             * profile's ladder, whose rung k is k rungs applied to the
             * plan; a --ladder's rungs keep what they set).  No more than
             * a's budget, as any rung after a. */
            attempt *skip = malloc(sizeof(*skip)), *from = calloc(1, sizeof(*from));
            rc = skip && from ? 0 : vram__fail(VRAM_ENOMEM, "out of host memory");
            if (!rc) {
                from->number = a->number;
                from->rung = next->rung;
                from->bytes = a->bytes;
                if (!r.have_ladder && a->plan)
                    rc = plan__at_rung(a->plan, next->rung, &from->plan);
            }
            if (!rc)
                rc = make_attempt(&r, skip, next->rung + 1, from);
            if (from)
                drop_plans(from);
            free(from);
            if (skip) {
                if (rc)
                    drop_plans(skip);
                drop_plans(next);
                *next = *skip;
            }
            free(skip);
        }
        if (rc || none_left)
            break;
        char change[512];
        describe_change(a, next, change, sizeof(change));
        say(&r, "retrying on rung %zu: %s", next->rung + 1, *change ? change : "same settings");
        a = next;
    }
    if (!*out->outcome && rc && r.ad.claimed) {
        /* A daemon job that cannot be run as recorded (a bad template, a
         * profile gone) ends now, rather than being queued again. */
        out->exit_status = 127;
        vram__strlcpy(out->outcome, "not-started", sizeof(out->outcome));
        say(&r, "%s", vram_last_error());
        vram__admit_ended(&r.ad, 127, "not-started", 0, true, interrupted ? NULL : then);
    } else if (*out->outcome) {
        vram__admit_ended(&r.ad, out->exit_status, out->outcome, out->peak_bytes,
                          out->attempts > 1 || strcmp(out->outcome, "not-started") != 0, interrupted ? NULL : then);
    }
    learn_now(&r);
    if (then && then->job)
        vram__admit_keep(&r.ad);            /* for the next job: no connect a job */
    if (then && then->job && r.history && strlen(spec->history ? spec->history : "") <
                                               sizeof(kept_history.path)) {
        kept_history.h = r.history;         /* for the next job: no open and close a job */
        vram__strlcpy(kept_history.path, spec->history ? spec->history : "", sizeof(kept_history.path));
        r.history = NULL;
    }
    if (slots) {
        drop_plans(&slots[0]);
        drop_plans(&slots[1]);
    }
    free(slots);
    free(w);
    close_everything(&r);
    return rc;
}
