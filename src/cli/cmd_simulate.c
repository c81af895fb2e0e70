/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_simulate.c - `vram simulate`: replays a trace of tasks on the
 * simulated cards through the scheduler and says how long it took.
 *
 * A trace lists kinds of tasks, one a line: a name, how many, the bytes
 * and seconds each needs, and optionally a priority, a ladder of cheaper
 * rungs, the odds of running out of memory or failing, and whether it may
 * fall back to the CPU.  Each task sleeps for its (sped up) duration on the
 * simulated card, so the run shows what admission does with real threads:
 * the makespan against the lower bound, retries, fallbacks, how many ran at
 * once.  --policy all compares vram with FIFO without backfill and one at
 * a time, which are the same engine with backfill off or one worker.  On a
 * terminal a progress bar runs on stderr.  --virtual runs the admission
 * engine alone in virtual time (vram_sched_simulate): the three policies
 * side by side in an instant, up to a million tasks (--tasks N scales the
 * built-in trace, its video jobs at the head of the queue or --spread).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define MAX_KINDS 64
#define MAX_RUNGS 8
#define DEFAULT_WORKERS 16
#define DEFAULT_SPEED 100

static const cli_flag flags[] = {
    { "policy", 'p', "P", "vram (default), fifo (no backfill), serial (one at a time), or all", false },
    { "workers", 'w', "N", "worker threads (default 16)", false },
    { "speed", 0, "N", "run N times faster than the trace's durations (default 100)", false },
    { "json", 0, NULL, "print the results as one JSON document", false },
    { "virtual", 0, NULL, "the admission engine alone in virtual time: FIFO, no backfill and backfill side by side", false },
    { "tasks", 'n', "N", "with --virtual and no TRACE: N tasks, one in a hundred a video job at the head", false },
    { "spread", 0, NULL, "with --tasks: the video jobs spread through the queue, not at its head", false },
    { "no-progress", 0, NULL, "no progress bar, even on a terminal", false },
    { NULL, 0, NULL, NULL, false },
};

/* The mixed trace of the issue: three video jobs, then a face enhancer's
 * 150 frames. */
static const char builtin_trace[] =
    "video-12g   1 12GiB  40s\n"
    "video-16g   1 16GiB  30s\n"
    "video-20g   1 20GiB  30s\n"
    "enhance   150 1.5GiB  3s\n";

typedef struct kind {
    char name[48];
    unsigned count;
    uint64_t bytes;
    double seconds;
    int priority;
    uint64_t rungs[MAX_RUNGS];
    unsigned nrungs;
    double oom, fail;               /* odds per attempt */
    bool cpu;
    int64_t wait_ms;
} kind;

typedef struct trace {
    kind k[MAX_KINDS];
    unsigned n;
    unsigned tasks;
    const char *source;
} trace;

/* ---- the trace ------------------------------------------------------------------ */

static int trace_error(const cli_args *a, const trace *t, unsigned line, const char *fmt,
                       const char *value, const char *why)
{
    char what[512];
    snprintf(what, sizeof(what), fmt, value);
    return cli_error(a, EXIT_USAGE, "%s:%u: %s%s%s", t->source, line, what, why ? ": " : "",
                     why ? why : "");
}

static int parse_odds(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || !(v >= 0 && v <= 1))
        return -1;
    *out = v;
    return 0;
}

/* key=value after the four fields. */
static int parse_option(const cli_args *a, trace *t, unsigned line, kind *k, char *word)
{
    char *eq = strchr(word, '=');
    if (!strcmp(word, "cpu")) {
        k->cpu = true;
        return 0;
    }
    if (!eq)
        return trace_error(a, t, line, "'%s' is not key=value (priority=, ladder=, oom=, fail=, wait=) or "
                           "the word cpu", word, NULL);
    *eq = '\0';
    const char *v = eq + 1;
    uint64_t u;
    if (!strcmp(word, "priority")) {
        char *end;
        long p = strtol(v, &end, 10);
        if (!*v || *end || p < -1000 || p > 1000)
            return trace_error(a, t, line, "priority '%s' is not a whole number from -1000 to 1000", v, NULL);
        k->priority = (int)p;
    } else if (!strcmp(word, "oom") || !strcmp(word, "fail")) {
        if (parse_odds(v, !strcmp(word, "oom") ? &k->oom : &k->fail))
            return trace_error(a, t, line, "odds '%s' are not a number from 0 to 1", v, NULL);
    } else if (!strcmp(word, "wait")) {
        if (vram_duration_parse(v, 1000, &u))
            return trace_error(a, t, line, "wait '%s'", v, vram_last_error());
        k->wait_ms = (int64_t)u;
    } else if (!strcmp(word, "ladder")) {
        char *save = NULL, *copy = strdup(v);
        for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            if (k->nrungs == MAX_RUNGS || vram_size_parse(s, &u)) {
                free(copy);
                return trace_error(a, t, line, "ladder '%s'", v,
                                   k->nrungs == MAX_RUNGS ? "at most 8 rungs" : vram_last_error());
            }
            k->rungs[k->nrungs++] = u;
        }
        free(copy);
    } else if (!strcmp(word, "cpu")) {
        return trace_error(a, t, line, "cpu takes no value ('cpu=%s'): write the word cpu", v, NULL);
    } else {
        return trace_error(a, t, line, "unknown key '%s' (priority=, ladder=, oom=, fail=, wait=, or the word "
                           "cpu)", word, NULL);
    }
    return 0;
}

/* NAME COUNT SIZE DURATION [key=value ...] */
static int parse_line(const cli_args *a, trace *t, unsigned line, char *text)
{
    char *hash = strchr(text, '#');
    if (hash)
        *hash = '\0';
    char *w[16];
    int n = 0;
    char *save = NULL, *s = strtok_r(text, " \t\r\n", &save);
    for (; s && n < 16; s = strtok_r(NULL, " \t\r\n", &save))
        w[n++] = s;
    if (n == 0)
        return 0;
    if (s)                          /* past 16 words options were dropped unread */
        return trace_error(a, t, line, "%s: more than 16 words on the line", w[0], NULL);
    if (n < 4)
        return trace_error(a, t, line, "'%s ...' needs NAME COUNT SIZE DURATION", w[0], NULL);
    if (t->n == MAX_KINDS)
        return trace_error(a, t, line, "%s: at most 64 kinds of task", w[0], NULL);
    kind *k = &t->k[t->n];
    memset(k, 0, sizeof(*k));
    k->wait_ms = VRAM_WAIT_FOREVER;
    snprintf(k->name, sizeof(k->name), "%s", w[0]);
    char *end;
    unsigned long count = strtoul(w[1], &end, 10);
    uint64_t ms;
    if (!isdigit((unsigned char)w[1][0]) || *end || count == 0 || count > 1000000)
        return trace_error(a, t, line, "count '%s' is not a whole number from 1 to 1000000", w[1], NULL);
    k->count = (unsigned)count;
    if (vram_size_parse(w[2], &k->bytes))
        return trace_error(a, t, line, "size '%s'", w[2], vram_last_error());
    if (k->bytes == 0)
        return trace_error(a, t, line, "size '%s' is zero", w[2], NULL);
    if (vram_duration_parse(w[3], 1000, &ms))
        return trace_error(a, t, line, "duration '%s'", w[3], vram_last_error());
    /* A task of no time makes a lower bound of 0 s: "infx" the bound. */
    if (ms == 0)
        return trace_error(a, t, line, "duration '%s' is under a millisecond: give one such as 2s", w[3],
                           NULL);
    k->seconds = (double)ms / 1000.0;
    for (int i = 4; i < n; i++) {
        int rc = parse_option(a, t, line, k, w[i]);
        if (rc)
            return rc;
    }
    if (t->tasks + k->count > 1000000)
        return trace_error(a, t, line, "%s: more than 1000000 tasks in all", w[0], NULL);
    t->tasks += k->count;
    t->n++;
    return 0;
}

static int parse_trace(const cli_args *a, const char *text, trace *t)
{
    char *copy = strdup(text);
    if (!copy)
        return cli_error(a, EXIT_FAIL, "out of memory");
    unsigned line = 0;
    int rc = 0;
    for (char *s = copy, *nl; s && !rc; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        rc = parse_line(a, t, ++line, s);
    }
    free(copy);
    if (!rc && t->tasks == 0)
        rc = cli_error(a, EXIT_USAGE, "%s: the trace has no task", t->source);
    return rc;
}

static int load_trace(const cli_args *a, trace *t)
{
    memset(t, 0, sizeof(*t));
    if (a->nrest == 0) {
        t->source = "the built-in mixed trace";
        return parse_trace(a, builtin_trace, t);
    }
    if (a->nrest > 1)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s' (one trace file)", a->rest[1]);
    t->source = a->rest[0];
    FILE *f = vram_file_open_read(t->source);
    if (!f)
        return cli_error(a, EXIT_USAGE, "cannot read trace '%s': %s", t->source, strerror(errno));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t got;
    while (mem && (got = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, got, mem);
    fclose(f);
    if (mem)
        fclose(mem);
    int rc = text ? parse_trace(a, text, t) : cli_error(a, EXIT_FAIL, "out of memory");
    free(text);
    return rc;
}

/* ---- running -------------------------------------------------------------------- */

typedef struct replay {
    const trace *t;
    double speed;
    int at_once, peak;              /* atomic */
    bool bar;
    vram_sched_stats last;
} replay;

typedef struct sim_task {
    const kind *k;
    replay *r;
} sim_task;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool happens(double odds, uint64_t id, int rung, int what)
{
    uint64_t h = mix(id * 131 + (uint64_t)(rung + 2) * 7 + (uint64_t)what);
    return (double)(h >> 11) / (double)(1ull << 53) < odds;
}

static int sim_callback(vram_task_call *call)
{
    sim_task *st = call->user;
    replay *r = st->r;
    int now = __atomic_add_fetch(&r->at_once, 1, __ATOMIC_RELAXED);
    int peak = __atomic_load_n(&r->peak, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&r->peak, &peak, now, false,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    double ms = st->k->seconds * 1000.0 / r->speed;
    struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
    nanosleep(&ts, NULL);
    __atomic_sub_fetch(&r->at_once, 1, __ATOMIC_RELAXED);
    if (call->device != VRAM_DEVICE_CPU && happens(st->k->oom, call->task_id, call->rung, 1))
        return VRAM_TASK_OOM;
    if (happens(st->k->fail, call->task_id, call->rung, 2)) {
        snprintf(call->reason, sizeof(call->reason), "simulated failure");
        return VRAM_TASK_FAILED;
    }
    return VRAM_TASK_OK;
}

static int keep_original(vram_task_call *call)
{
    (void)call;
    return VRAM_TASK_OK;
}

static void draw_bar(void *user, const vram_sched_stats *st)
{
    replay *r = user;
    r->last = *st;
    if (!r->bar)
        return;
    uint64_t ended = st->done + st->fell_back + st->failed + st->canceled;
    fputc('\r', stderr);
    cli_bar(stderr, ended, r->t->tasks, 30, cli_unicode(stderr));
    fprintf(stderr, " %llu/%u  %llu running, %llu queued, %llu retried ",
            (unsigned long long)ended, r->t->tasks, (unsigned long long)st->running,
            (unsigned long long)st->queued, (unsigned long long)st->retried);
    fflush(stderr);
}

typedef struct result {
    const char *policy;
    double makespan_s;
    vram_sched_stats stats;
    int peak;
} result;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int submit_trace(const cli_args *a, vram_sched *s, const trace *t, sim_task *tasks, replay *r)
{
    unsigned i = 0;
    for (unsigned n = 0; n < t->n; n++) {
        const kind *k = &t->k[n];
        vram_rung rungs[MAX_RUNGS];
        for (unsigned g = 0; g < k->nrungs; g++)
            rungs[g] = (vram_rung){ k->rungs[g], sim_callback };
        for (unsigned c = 0; c < k->count; c++, i++) {
            tasks[i] = (sim_task){ k, r };
            vram_task task = { .fn = sim_callback, .bytes = k->bytes, .ladder = rungs,
                               .nrungs = k->nrungs, .fallback = keep_original,
                               .task_class = k->name, .device = VRAM_DEVICE_ANY,
                               .priority = k->priority, .cpu_ok = k->cpu, .wait_ms = k->wait_ms,
                               .expected_ms = (uint64_t)(k->seconds * 1000.0 / r->speed + 0.5),
                               .user = &tasks[i] };
            int rc = vram_sched_submit(s, &task, NULL);
            if (rc)
                return cli_fail(a, rc, k->name);
        }
    }
    return 0;
}

/* One run of the trace under a policy: a fresh context, ledger and pool. */
static int run_policy(cli_args *a, const trace *t, const char *policy, unsigned workers,
                      double speed, result *out)
{
    bool serial = !strcmp(policy, "serial");
    replay r = { t, speed, 0, 0, isatty(STDERR_FILENO) && !cli_has(a, "no-progress"), { 0 } };
    vram_ctx *ctx;
    int rc = cli_open(a, &ctx);
    if (rc)
        return rc;
    vram_ledger_config lc = { .no_backfill = !strcmp(policy, "fifo") };
    vram_sched_config sc = { .workers = serial ? 1 : workers, .progress = draw_bar, .progress_user = &r };
    vram_ledger *l = NULL;
    vram_sched *s = NULL;
    sim_task *tasks = calloc(t->tasks, sizeof(*tasks));
    if (!tasks)
        rc = cli_error(a, EXIT_FAIL, "out of memory for %u tasks", t->tasks);
    else if ((rc = vram_ledger_open(ctx, &lc, &l)) || (rc = vram_sched_open(l, &sc, &s)))
        rc = cli_fail(a, rc, "cannot start the scheduler");
    double t0 = now_s();
    if (!rc)
        rc = submit_trace(a, s, t, tasks, &r);
    vram_outcome o;
    for (unsigned i = 0; !rc && i < t->tasks; i++)
        vram_sched_next(s, VRAM_WAIT_FOREVER, &o);
    out->makespan_s = (now_s() - t0) * speed;
    if (r.bar)
        fputc('\n', stderr);
    out->policy = policy;
    out->peak = r.peak;
    if (s)
        vram_sched_get_stats(s, &out->stats);
    vram_sched_close(s);
    vram_ledger_close(l);
    vram_ctx_close(ctx);
    free(tasks);
    return rc;
}

/* ---- reporting -------------------------------------------------------------------- */

typedef struct bound {
    double seconds, memory_time, capacity_gib;
    unsigned ndevices;
} bound;

static int lower_bound(cli_args *a, const trace *t, bound *b, char *devices, size_t cap)
{
    vram_ctx *ctx;
    int rc = cli_open(a, &ctx);
    if (rc)
        return rc;
    vram_snapshot *snap;
    if ((rc = vram_snapshot_take(ctx, NULL, &snap))) {
        rc = cli_fail(a, rc, "cannot read the simulated cards");
        vram_ctx_close(ctx);
        return rc;
    }
    double capacity = 0, longest = 0, memory_time = 0;
    size_t at = 0;
    for (unsigned i = 0; i < snap->ndevices; i++) {
        const vram_device_snapshot *d = &snap->devices[i];
        /* In doubles: a margin over what is free leaves nothing, where in
         * uint64_t it wrapped to 16 EiB "to use". */
        double room = ((double)d->info.total_bytes - (double)d->info.used_bytes -
                       (double)d->margin_bytes) / (double)(1ull << 30);
        capacity += room > 0 ? room : 0;
        char total[32];
        at += (size_t)snprintf(devices + at, at < cap ? cap - at : 0, "%s%s %s (%.1f GiB to use)",
                               i ? ", " : "", d->info.name, cli_gib(d->info.total_bytes, total, sizeof(total)),
                               room > 0 ? room : 0);
    }
    b->ndevices = snap->ndevices;
    vram_snapshot_free(snap);
    vram_ctx_close(ctx);
    for (unsigned n = 0; n < t->n; n++) {
        memory_time += (double)t->k[n].bytes / (double)(1ull << 30) * t->k[n].seconds * t->k[n].count;
        if (t->k[n].seconds > longest)
            longest = t->k[n].seconds;
    }
    b->memory_time = memory_time;
    b->capacity_gib = capacity;
    b->seconds = capacity > 0 && memory_time / capacity > longest ? memory_time / capacity : longest;
    return 0;
}

static void print_text(const trace *t, const char *devices, double speed, const bound *b,
                       const result *res, int n)
{
    printf("simulated: %s\ntrace: %u tasks from %s; time runs %.0fx faster than the trace\n\n",
           devices, t->tasks, t->source, speed);
    printf("%-8s %10s %9s %6s %8s %10s %7s %7s %12s\n", "policy", "makespan", "vs bound", "done",
           "retried", "fell back", "failed", "on CPU", "most at once");
    for (int i = 0; i < n; i++) {
        const vram_sched_stats *st = &res[i].stats;
        printf("%-8s %9.1fs %8.2fx %6llu %8llu %10llu %7llu %7llu %12d\n", res[i].policy,
               res[i].makespan_s, res[i].makespan_s / b->seconds, (unsigned long long)st->done,
               (unsigned long long)st->retried, (unsigned long long)st->fell_back,
               (unsigned long long)st->failed, (unsigned long long)st->on_cpu, res[i].peak);
    }
    printf("\nlower bound: %.1f s (%.0f GiB-seconds of memory over %.1f GiB, or the longest task)\n",
           b->seconds, b->memory_time, b->capacity_gib);
}

static void print_json(const trace *t, double speed, const bound *b, const result *res, int n)
{
    printf("{\"tasks\":%u,\"speed\":%g,\"lower_bound_s\":%.3f,\"runs\":[", t->tasks, speed, b->seconds);
    for (int i = 0; i < n; i++) {
        const vram_sched_stats *st = &res[i].stats;
        printf("%s{\"policy\":\"%s\",\"makespan_s\":%.3f,\"done\":%llu,\"retried\":%llu,"
               "\"fell_back\":%llu,\"failed\":%llu,\"on_cpu\":%llu,\"most_at_once\":%d}",
               i ? "," : "", res[i].policy, res[i].makespan_s, (unsigned long long)st->done,
               (unsigned long long)st->retried, (unsigned long long)st->fell_back,
               (unsigned long long)st->failed, (unsigned long long)st->on_cpu, res[i].peak);
    }
    printf("]}\n");
}

/* ---- virtual time -------------------------------------------------------------------- */

static const struct { const char *name; double gib, seconds; } builtin_kinds[] = {
    { "video-12g", 12, 40 }, { "video-16g", 16, 30 }, { "video-20g", 20, 30 }, { "enhance", 1.5, 3 },
};

/* The trace's tasks in order, or (tasks > 0) the built-in kinds scaled to
 * that many tasks, one in a hundred a video job. */
static vram_sim_task *sim_tasks(const trace *t, uint64_t tasks, bool spread, size_t *n_out)
{
    size_t n = tasks ? (size_t)tasks : t->tasks;
    vram_sim_task *v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return NULL;
    size_t at = 0, videos = 0;
    for (unsigned i = 0; !tasks && i < t->n; i++)
        for (unsigned c = 0; c < t->k[i].count; c++, at++) {
            uint64_t ms = (uint64_t)(t->k[i].seconds * 1000.0 + 0.5);
            v[at] = (vram_sim_task){ t->k[i].bytes, ms ? ms : 1, ms ? ms : 1, t->k[i].priority };
        }
    for (; tasks && at < n; at++) {
        bool video = spread ? at % 100 == 0 : at < n / 100;
        unsigned k = video ? (unsigned)(videos++ % 3) : 3;
        uint64_t ms = (uint64_t)(builtin_kinds[k].seconds * 1000);
        v[at] = (vram_sim_task){ (uint64_t)(builtin_kinds[k].gib * (double)(1ull << 30)), ms, ms, 0 };
    }
    *n_out = n;
    return v;
}

static int run_virtual(cli_args *a, const trace *t, const bound *b, const char *devices)
{
    uint64_t tasks = 0;
    int rc;
    if (cli_has(a, "tasks") && (rc = cli_uint(a, "tasks", 1, 1000000, &tasks)))
        return rc;
    if (tasks && a->nrest > 0)
        return cli_error(a, EXIT_USAGE, "--tasks scales the built-in trace: give it without TRACE");
    if (b->ndevices != 1)
        return cli_error(a, EXIT_USAGE, "--virtual simulates one card; --sim gives %u", b->ndevices);
    size_t n;
    vram_sim_task *v = sim_tasks(t, tasks, cli_has(a, "spread"), &n);
    if (!v)
        return cli_fail(a, VRAM_ENOMEM, NULL);
    uint64_t capacity = (uint64_t)(b->capacity_gib * (double)(1ull << 30));
    if (!capacity) {
        free(v);
        return cli_error(a, EXIT_NOFIT, "GPU 0 has no memory to use (its total less what is used "
                         "and the --margin): no task fits");
    }
    static const char *const names[3] = { "vram with backfill", "vram, no backfill", "FIFO, one at a time" };
    static const char *const keys[3] = { "vram", "fifo", "one_at_a_time" };
    vram_sim_result r[3];
    for (int p = 0; p < 3; p++)
        if ((rc = vram_sched_simulate(v, n, capacity, p, 0, &r[p]))) {
            free(v);
            return cli_fail(a, rc, NULL);
        }
    free(v);
    double lb = (double)r[0].bound_ms / 1000.0;
    if (cli_has(a, "json")) {
        printf("{\"tasks\":%zu,\"virtual\":true,\"lower_bound_s\":%.3f,\"runs\":[", n, lb);
        for (int p = 2; p >= 0; p--)
            printf("{\"policy\":\"%s\",\"makespan_s\":%.3f,\"most_at_once\":%u}%s", keys[p],
                   (double)r[p].makespan_ms / 1000.0, r[p].most_at_once, p ? "," : "");
        printf("]}\n");
        return EXIT_OK;
    }
    printf("simulated: %s\ntrace: %zu tasks from %s%s; virtual time: the admission engine alone, asked "
           "again at every end\n\n", devices, n, tasks ? "the built-in kinds, one in a hundred a video job "
           : t->source, tasks ? (cli_has(a, "spread") ? "spread through the queue" : "at the head of the queue")
           : "");
    printf("%-20s %10s %9s %12s\n", "policy", "makespan", "vs bound", "most at once");
    for (int p = 2; p >= 0; p--)
        printf("%-20s %9.1fs %8.3fx %12u\n", names[p], (double)r[p].makespan_ms / 1000.0,
               (double)r[p].makespan_ms / (double)r[0].bound_ms, r[p].most_at_once);
    printf("\nlower bound: %.1f s (memory-time over %.1f GiB, or the longest task)\n", lb, b->capacity_gib);
    return EXIT_OK;
}

static int run(cli_args *a)
{
    static const char *const threaded_only[] = { "policy", "workers", "speed" };
    for (size_t i = 0; cli_has(a, "virtual") && i < sizeof(threaded_only) / sizeof(threaded_only[0]); i++)
        if (cli_has(a, threaded_only[i]))
            return cli_error(a, EXIT_USAGE, "--%s is for the run with threads, not --virtual (which runs FIFO, "
                             "no backfill and backfill side by side in virtual time)", threaded_only[i]);
    const char *policy = cli_get(a, "policy") ? cli_get(a, "policy") : "vram";
    static const char *const all[] = { "vram", "fifo", "serial" };
    bool every = !strcmp(policy, "all");
    if (!every && strcmp(policy, "vram") && strcmp(policy, "fifo") && strcmp(policy, "serial"))
        return cli_error(a, EXIT_USAGE, "--policy: '%s' is not one of vram, fifo, serial, all", policy);
    uint64_t workers = DEFAULT_WORKERS, speed = DEFAULT_SPEED;
    int rc;
    if ((cli_has(a, "workers") && (rc = cli_uint(a, "workers", 1, 4096, &workers))) ||
        (cli_has(a, "speed") && (rc = cli_uint(a, "speed", 1, 100000, &speed))))
        return rc;
    if (vram_options_set(a->opts, "backend", "sim", "simulate"))
        return cli_fail(a, VRAM_EINVAL, NULL);
    trace t;
    if ((rc = load_trace(a, &t)))
        return rc;
    bound b = { 0, 0, 0, 0 };
    char devices[1024] = "";
    if ((rc = lower_bound(a, &t, &b, devices, sizeof(devices))))
        return rc;
    if (cli_has(a, "virtual"))
        return run_virtual(a, &t, &b, devices);
    if (cli_has(a, "tasks") || cli_has(a, "spread"))
        return cli_error(a, EXIT_USAGE, "--tasks and --spread go with --virtual");
    result res[3];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        const char *p = every ? all[i] : i ? NULL : policy;
        if (!p)
            break;
        if ((rc = run_policy(a, &t, p, (unsigned)workers, (double)speed, &res[n++])))
            return rc;
    }
    if (cli_has(a, "json"))
        print_json(&t, (double)speed, &b, res, n);
    else
        print_text(&t, devices, (double)speed, &b, res, n);
    return EXIT_OK;
}

const cli_command cmd_simulate = {
    .name = "simulate",
    .usage = "[TRACE] [--policy vram|fifo|serial|all] [--workers N] [--speed N] [--json]\n"
             "       vram simulate --virtual [TRACE | --tasks N [--spread]] [--json]",
    .summary = "replay a trace of tasks on simulated cards through the scheduler; print the makespan",
    .description =
        "Each line of TRACE is one kind of task: NAME COUNT SIZE DURATION, then any of\n"
        "priority=N, ladder=SIZE,SIZE,... (cheaper rungs tried after out-of-memory),\n"
        "oom=ODDS and fail=ODDS (per attempt, 0 to 1), wait=DURATION and cpu (may run on\n"
        "the CPU when no card takes it in time).  '#' starts a comment.  Without TRACE,\n"
        "the built-in mixed trace runs: video jobs of 12, 16 and 20 GiB for 40, 30 and\n"
        "30 s, then 150 enhancer frames of 1.5 GiB for 3 s each.\n"
        "The cards are --sim's (default one 24 GiB card).  Tasks sleep for their\n"
        "duration divided by --speed; makespans are in the trace's seconds.  The lower\n"
        "bound is the memory-time of the trace over the usable memory, or the longest\n"
        "task.  fifo is the same engine with backfill off; serial, with one worker.\n"
        "--virtual runs the admission engine alone in virtual time, on the first card:\n"
        "FIFO one at a time, vram without backfill and vram with backfill side by side\n"
        "(ladders, odds and waits of the trace are not played).  --tasks N scales the\n"
        "built-in trace to N tasks, one in a hundred a video job, all at the head of\n"
        "the queue (--spread: every hundredth).\n"
        "Exit status: 0, 2 for bad input, 3 when a task fits no card.",
    .flags = flags,
    .run = run,
};
