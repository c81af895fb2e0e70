/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_leakcheck.c - `vram leakcheck`: is a process's GPU memory growing?
 *
 * Samples the GPU memory of a process and all its descendants (an existing
 * one with --pid, or a command it starts) every interval, then fits a robust
 * trend: "growing N MiB per sample" only when the whole 95% interval is
 * above zero, so noise and one-off spikes are not called leaks.  Samples
 * before the process first touches the GPU are left out (loading is not a
 * leak).
 *
 * With a command, vram becomes a child subreaper: a grandchild whose parent
 * exits is re-parented to vram, not to init, so it stays in the tree that is
 * measured, and sampling goes on until the whole tree has let go of the GPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "pid", 'p', "PID", "watch this running process (and its children)", false },
    { "seconds", 's', "S", "sample for S seconds (more than 0; default with --pid: 30; with a command: "
      "until it exits)", false },
    { "min-growth", 0, "SIZE", "growth over the run below which nothing is called a leak (default 1MiB)", false },
    { "json", 0, NULL, "print the verdict as JSON", false },
    { NULL, 0, NULL, NULL, false },
};

typedef struct samples {
    uint64_t *v;
    size_t n, cap;
    uint64_t peak;
} samples;

static int push(samples *s, uint64_t bytes)
{
    if (s->n == 0 && bytes == 0)
        return 0;                   /* not on the GPU yet */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        uint64_t *p = realloc(s->v, cap * sizeof(*p));
        if (!p)
            return VRAM_ENOMEM;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = bytes;
    if (bytes > s->peak)
        s->peak = bytes;
    return 0;
}

static pid_t start_command(cli_args *a)
{
    char **argv = a->rest + a->dashdash;
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(gate[0]);
        execvp(argv[0], argv);
        int e = errno;
        if (write(gate[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    close(gate[1]);
    int e = 0;
    if (pid > 0 && read(gate[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
        waitpid(pid, NULL, 0);
        errno = e;
        pid = -1;
    }
    close(gate[0]);
    return pid;
}

static void report(cli_args *a, uint32_t pid, const samples *s, uint64_t interval_ms,
                   const vram_trend *t, int fit_rc)
{
    char text[256], peak[32];
    cli_gib(s->peak, peak, sizeof(peak));
    if (fit_rc)
        snprintf(text, sizeof(text), "not enough samples on the GPU (%zu; at least 5 needed)", s->n);
    else
        vram_trend_describe(t, "sample", text, sizeof(text));
    if (cli_has(a, "json")) {
        printf("{\"pid\":%u,\"samples\":%zu,\"interval_ms\":%llu,\"peak_bytes\":%llu,", pid, s->n,
               (unsigned long long)interval_ms, (unsigned long long)s->peak);
        if (!fit_rc)
            printf("\"slope_bytes_per_sample\":%.0f,\"slope_bytes_per_second\":%.0f,"
                   "\"ci_low_bytes\":%.0f,\"ci_high_bytes\":%.0f,\"leaking\":%s,",
                   t->slope_bytes, t->slope_bytes * 1000.0 / (double)interval_ms, t->slope_low,
                   t->slope_high, t->leaking ? "true" : "false");
        else
            printf("\"leaking\":null,");
        printf("\"verdict\":");
        cli_json_string(stdout, text);
        printf("}\n");
    } else {
        printf("vram leakcheck: pid %u, %zu samples every %llu ms, peak %s\n", pid, s->n,
               (unsigned long long)interval_ms, peak);
        printf("  %s\n", text);
        if (!fit_rc && t->leaking)
            printf("  that is %.1f MiB per second\n",
                   t->slope_bytes * 1000.0 / (double)interval_ms / 1048576.0);
    }
}

static int run(cli_args *a)
{
    bool command = a->dashdash >= 0 && a->nrest > a->dashdash;
    if (cli_has(a, "pid") == command)
        return cli_error(a, EXIT_USAGE, "give either --pid PID or -- COMMAND [ARGS], not %s",
                         command ? "both" : "neither");
    if ((command ? a->dashdash : a->nrest) > 0)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s'", a->rest[0]);
    uint64_t pid64 = 0, limit_ms = command ? 0 : 30000, min_growth = 0, interval_ms;
    int rc;
    if ((cli_has(a, "pid") && (rc = cli_uint(a, "pid", 1, 4194304, &pid64))) ||
        (cli_has(a, "seconds") && (rc = cli_duration_ms(a, "seconds", CLI_SECONDS, &limit_ms))) ||
        (cli_has(a, "min-growth") && (rc = cli_size(a, "min-growth", &min_growth))))
        return rc;
    /* 0 would mean "no limit" to the loop: refused, not taken. */
    if (cli_has(a, "seconds") && limit_ms == 0)
        return cli_error(a, EXIT_USAGE, "--seconds: '%s' would stop before the first sample: give more than 0 "
                         "(e.g. 30 or 2m), or leave it out (with --pid: 30 s; with a command: until it exits)",
                         cli_get(a, "seconds"));
    if (!command && kill((pid_t)pid64, 0) != 0 && errno == ESRCH)
        return cli_error(a, EXIT_USAGE, "--pid %llu: no such process", (unsigned long long)pid64);
    vram_ctx *ctx;
    if ((rc = cli_open(a, &ctx)))
        return rc;
    vram_duration_parse(vram_options_get(vram_ctx_options(ctx), "interval"), 1, &interval_ms);

    pid_t child = 0;
    if (command)
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if (command && (child = start_command(a)) < 0) {
        rc = cli_error(a, 127, "cannot run '%s': %s", a->rest[a->dashdash], strerror(errno));
        vram_ctx_close(ctx);
        return rc;
    }
    uint32_t pid = command ? (uint32_t)child : (uint32_t)pid64;
    uint32_t root = command ? (uint32_t)getpid() : pid;   /* the subreaper's tree */
    cli_catch_signals();
    samples s = { 0 };
    int child_status = 0;
    bool child_done = false;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!cli_interrupted) {
        uint64_t bytes = 0;
        bool sampled = vram_process_tree_usage(ctx, root, &bytes) == 0;
        if (command && !child_done && waitpid(child, &child_status, WNOHANG) == child)
            child_done = true;
        if (command)
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;                   /* orphans re-parented to us */
        if (child_done && bytes == 0)
            break;                  /* the command and all it started let go */
        if (sampled && push(&s, bytes)) {
            rc = cli_error(a, EXIT_FAIL, "out of memory keeping samples");
            break;
        }
        if (!command && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        uint64_t elapsed = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000 +
                           (uint64_t)((t.tv_nsec - t0.tv_nsec) / 1000000);
        if (limit_ms && elapsed >= limit_ms)
            break;
        struct timespec nap = { (time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000L };
        nanosleep(&nap, NULL);
    }
    vram_trend trend;
    int fit_rc = vram_trend_fit(s.v, s.n, min_growth, &trend);
    if (!rc)
        report(a, pid, &s, interval_ms, &trend, fit_rc);
    if (command && !child_done) {
        if (cli_interrupted)
            kill(child, SIGTERM);
        waitpid(child, &child_status, 0);
    }
    free(s.v);
    vram_ctx_close(ctx);
    if (rc)
        return rc;
    if (!fit_rc && trend.leaking)
        return EXIT_LEAK;
    if (command && WIFEXITED(child_status))
        return WEXITSTATUS(child_status);
    if (command && WIFSIGNALED(child_status))
        return 128 + WTERMSIG(child_status);
    return EXIT_OK;
}

const cli_command cmd_leakcheck = {
    .name = "leakcheck",
    .usage = "(--pid PID [--seconds S] | [--seconds S] -- COMMAND [ARGS...]) [--json]",
    .summary = "sample a process tree's GPU memory and say whether it is growing (a leak) or flat",
    .description =
        "Samples every --interval (default 100ms).  The verdict is a Theil-Sen slope with\n"
        "its 95% confidence interval: a leak needs the whole interval above zero and a total\n"
        "growth over --min-growth.\n"
        "Exit status: 4 when memory is growing; otherwise 0 (or, with a command, its own\n"
        "exit status); 2 for bad input; 127 when the command cannot be run.",
    .flags = flags,
    .run = run,
};
