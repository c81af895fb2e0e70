/* SPDX-License-Identifier: MIT */
/*
 * bench/monitor.c - what measuring costs.
 *
 *   build/bench/monitor [--seconds S]
 *
 * One table, all from one run:
 *   - one device query and one whole snapshot (devices, processes, host) on
 *     sim, on NVML through the stub library, and on the real NVML when a
 *     GPU is present;
 *   - the baseline the write-ups use: one process per query (nvidia-smi
 *     where it exists, else `vram status --json`), and the ratio;
 *   - the sampler thread's CPU use at 10 Hz and 100 Hz, as a share of one
 *     core (target at 10 Hz: under 0.5%).
 */
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "vram.h"

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char build_dir[PATH_MAX];

static vram_ctx *open_backend(const char *backend, const char *sim, const char *state,
                              const char *library)
{
    vram_options *o = NULL;
    vram_options_new(&o);
    vram_options_set(o, "backend", backend, NULL);
    if (sim)
        vram_options_set(o, "sim", sim, NULL);
    if (state)
        vram_options_set(o, "sim-state", state, NULL);
    if (library)
        vram_options_set(o, "nvml-library", library, NULL);
    vram_ctx *ctx = NULL;
    int rc = vram_ctx_open(&ctx, o);
    vram_options_free(o);
    return rc ? NULL : ctx;
}

/* Microseconds per call of query (what = 0) or snapshot (what = 1). */
static double per_call_us(vram_ctx *ctx, int what, double seconds)
{
    unsigned long n = 0;
    double t0 = now_s(CLOCK_MONOTONIC), t;
    do {
        for (int i = 0; i < 50; i++, n++) {
            if (what == 0) {
                vram_device_info in;
                vram_device_query(ctx, 0, &in);
            } else {
                vram_snapshot *s;
                if (vram_snapshot_take(ctx, NULL, &s) == 0)
                    vram_snapshot_free(s);
            }
        }
        t = now_s(CLOCK_MONOTONIC);
    } while (t - t0 < seconds);
    return (t - t0) / (double)n * 1e6;
}

/* Microseconds per run of a program (searched in PATH, its output
 * dropped), the way scripts poll nvidia-smi; -1 when it cannot be run or
 * fails.  No shell: the build's path may hold any character. */
static double per_exec_us(char *const argv[], int runs)
{
    extern char **environ;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    double t0 = now_s(CLOCK_MONOTONIC), per = 0;
    for (int i = 0; i < runs && per == 0; i++) {
        pid_t pid;
        int status;
        if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) ||
            waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
            per = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    return per < 0 ? -1 : (now_s(CLOCK_MONOTONIC) - t0) / runs * 1e6;
}

/* CPU share of one core used by the process while a monitor samples and the
 * main thread sleeps: that is the sampler thread's cost. */
static double sampler_cpu_percent(vram_ctx *ctx, unsigned interval_ms, double seconds,
                                  unsigned long *samples)
{
    vram_monitor *m;
    if (vram_monitor_start(ctx, interval_ms, 0, &m))
        return -1;
    double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    usleep((useconds_t)(seconds * 1e6));
    double c1 = now_s(CLOCK_PROCESS_CPUTIME_ID), w1 = now_s(CLOCK_MONOTONIC);
    vram_window_stats w;
    vram_monitor_window(m, 0, 0, &w);
    *samples = w.count;
    vram_monitor_stop(m);
    return (c1 - c0) / (w1 - w0) * 100.0;
}

static void row(const char *what, const char *backend, double value, const char *unit,
                const char *note)
{
    if (value < 0)
        printf("| %-36s | %-18s | %14s | %s\n", what, backend, "n/a", note);
    else
        printf("| %-36s | %-18s | %10.2f %-3s | %s\n", what, backend, value, unit, note);
}

int main(int argc, char **argv)
{
    double seconds = 3.0;
    const bench_opt opts[] = { { .name = "--seconds", .value = &seconds, .min = 0.01, .max = 3600 } };
    int arc = bench_args(argc, argv, "bench/monitor", "[--seconds S]", opts, 1);
    if (arc)
        return arc == 1 ? 0 : 2;
    if (!bench_build_dir(build_dir, sizeof(build_dir))) {
        fprintf(stderr, "bench/monitor: cannot tell which build this is (/proc/self/exe)\n");
        return 1;
    }

    /* A realistic sim: two cards, four processes holding memory. */
    char state[] = "/tmp/vram-bench-state-XXXXXX";
    if (!mkdtemp(state))
        return 1;
    for (int i = 0; i < 4; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%d-%d", state, i % 2, (int)getpid());
        FILE *f = fopen(path, "w");
        fprintf(f, "%d\n", (i + 1) << 28);
        fclose(f);
    }
    const char *spec = "T4:14.7GiB:8.5GiB,RTX 4090:24GiB";
    vram_ctx *sim = open_backend("sim", spec, state, NULL);
    /* The real driver first: once the stub is loaded, dlopen by the name
     * libnvidia-ml.so.1 would find the stub (same soname). */
    vram_ctx *real = open_backend("nvml", NULL, NULL, NULL);
    char stub[PATH_MAX + 32];
    snprintf(stub, sizeof(stub), "%s/stubs/libnvidia-ml.so.1", build_dir);
    vram_ctx *stubbed = !real && access(stub, R_OK) == 0 ? open_backend("nvml", NULL, NULL, stub) : NULL;
    double q = seconds / 3;

    printf("vram %s  bench/monitor  (%.1f s per sampler row; %s)\n\n", vram_version(), seconds,
           real ? "a GPU is present" : "no GPU: real-NVML rows are n/a");
    printf("| %-36s | %-18s | %14s | %s\n", "measure", "backend", "value", "note");
    printf("|%s|%s|%s|%s\n", "--------------------------------------", "--------------------",
           "----------------", "------");
    double sim_snap = per_call_us(sim, 1, q);
    row("device query", "sim", per_call_us(sim, 0, q), "us", "");
    row("snapshot (devices+procs+host)", "sim", sim_snap, "us", "");
    if (stubbed) {
        row("device query", "nvml (stub lib)", per_call_us(stubbed, 0, q), "us", "dlopen'd stub: backend overhead");
        row("snapshot (devices+procs+host)", "nvml (stub lib)", per_call_us(stubbed, 1, q), "us", "");
    }
    double real_snap = real ? per_call_us(real, 1, q) : -1;
    row("device query", "nvml", real ? per_call_us(real, 0, q) : -1, "us", real ? "" : "no GPU");
    row("snapshot (devices+procs+host)", "nvml", real_snap, "us", real ? "" : "no GPU");

    /* Baseline: a process per query: nvidia-smi where it runs, else vram
     * status on the same simulated card. */
    char *smi[] = { "nvidia-smi", "--query-gpu=memory.total,memory.used", "--format=csv,noheader", NULL };
    const char *base_name = "nvidia-smi";
    double exec_us = per_exec_us(smi, 20);
    if (exec_us < 0) {              /* the sim contexts are open already: their options are read */
        char exe[PATH_MAX + 16];
        snprintf(exe, sizeof(exe), "%s/bin/vram", build_dir);
        char *status_argv[] = { exe, "status", "--json", NULL };
        setenv("VRAM_BACKEND", "sim", 1);
        setenv("VRAM_SIM", spec, 1);
        base_name = "vram status (exec)";
        exec_us = per_exec_us(status_argv, 20);
    }
    char note[96];
    double ours = real ? real_snap : sim_snap;
    snprintf(note, sizeof(note), "baseline: one process per query; in-process is %.0fx cheaper",
             exec_us > 0 ? exec_us / ours : 0);
    row("query by running a program", base_name, exec_us, "us", note);

    unsigned long n10, n100;
    vram_ctx *sampled = real ? real : sim;
    const char *sampled_name = real ? "nvml" : "sim";
    double cpu10 = sampler_cpu_percent(sampled, 100, seconds, &n10);
    double cpu100 = sampler_cpu_percent(sampled, 10, seconds, &n100);
    snprintf(note, sizeof(note), "%lu samples; target < 0.5%%: %s", n10,
             cpu10 >= 0 && cpu10 < 0.5 ? "met" : "NOT MET");
    row("sampler CPU at 10 Hz (% of a core)", sampled_name, cpu10, "%", note);
    snprintf(note, sizeof(note), "%lu samples", n100);
    row("sampler CPU at 100 Hz (% of a core)", sampled_name, cpu100, "%", note);

    vram_ctx_close(sim);
    vram_ctx_close(stubbed);
    vram_ctx_close(real);
    if (bench_remove_tree(state))
        return 1;
    return cpu10 >= 0 && cpu10 < 0.5 ? 0 : 1;
}
