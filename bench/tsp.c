/* SPDX-License-Identifier: MIT */
/*
 * bench/tsp.c - vram's queue side by side with Debian's task-spooler (`tsp`),
 * and vramd's durable submits against a bare SQLite loop in this process.
 *
 *   build/bench/tsp [--rounds N] [--seconds S] [--only start|submits|handover|jobs|durable]
 *                   [--dir DIR]
 *
 * --dir: where the servers' folders go (default /tmp): both sides' job
 * output files, and vramd's queue and its log (the folder is passed to the
 * jobs as an argument, never pasted into their shell text).  --only runs
 * one part and shows its rows alone.  A bad option exits 2, naming it.  On a file system where
 * making a file is dear (ext4 without a journal skips every inode freed in
 * the last minute), `--dir /dev/shm` shows what is the disk's share.
 *
 * Every measure runs once on each side per round, in alternating order (tsp
 * first in odd rounds, vram first in even ones), and the table gives each
 * side's median over the rounds and their ratio, all from this one run.
 * Each side has a server of its own for each measure: tsp with its own
 * TS_SOCKET and TMPDIR, vramd (build/bin/vram serve) on a simulated 24 GiB
 * card with its own socket, queue and state, as the tests start one.
 *
 *   - CLI start: `vram --version`, and `vram submit` up to its connect (no
 *     daemon at that socket), each against `tsp -V` (median of many);
 *   - a list of one job through the command (`vram queue`, `tsp -l`), and
 *     one submit through the command, start to exit, each side with its
 *     server (`vram submit -- true` against `tsp true`, behind a job that
 *     holds the slot; median of many in turn): the wall time, and the
 *     command's own CPU time (user + system, from wait4), which leaves out
 *     what its server does meanwhile (vramd's fsync; tsp does not sync);
 *   - CLI submits in a row, and from 8 submitters at once, behind a job that
 *     holds the only slot (tsp -S 1; a 21 GiB job on the card);
 *   - one job's end to the next one's start with one slot: the jobs stamp
 *     `date +%s%N` as they start and end; p50 and p99 of the hand-overs;
 *   - a lone job's submit to its start: 12 jobs a round, each submitted
 *     300 ms after the last ended (longer than a vramd runner stays parked
 *     for a next job), so each needs a runner of its own; p50; and on
 *     vram's turn again with vramd's --spawner no (each runner forked and
 *     exec'd by vramd), the two in turn: what the spawner spares;
 *   - 200 `true` jobs with 2 slots (tsp -S 2; 10 GiB jobs): first submit to
 *     last end; and the same queued first behind two jobs that hold both
 *     slots, from their end to the last end (the run time alone, no submits);
 *   - the hand-overs and the 200 jobs again, vram's submitted with
 *     `--enforce off`, after both sides' turns in each round: what of vram's
 *     rows is the shim, which every process of a job loads (LD_PRELOAD), and
 *     a tsp job has no counterpart of (the rows the goals name are
 *     the ones above, with the shim);
 *   - durable submits over the socket (the C client, 1 and 8 clients)
 *     against a bare SQLite WAL loop, synchronous=FULL, on the same disk:
 *     one row per transaction for 1 client, 8 rows per transaction for 8;
 *     and, for 1 client, the same loop with its log already full size (its
 *     first checkpoint behind it), as a long-running vramd's is: a fresh
 *     log grows at every commit, and on ext4 an fsync of a file that grew
 *     costs more; vramd sizes its log once at its start (wire/queue.c), so
 *     against the fresh loop it is spared what the loop pays then; and the
 *     same two paired: one commit of that loop, one submit, in turn (rows
 *     taken a second apart on a shared machine differ by half), with a
 *     minimal server in the same turn (it reads a request, writes a page to
 *     its log, fdatasyncs, replies): what a socket and two wake-ups cost
 *     any server that answers after its fsync, which the bare loop does not
 *     pay.
 *
 * Where tsp is not installed, its column says so and the vram side still
 * runs.  Goals (issue 13): vram no slower than tsp on every row, durable
 * submits >= 0.8 of the one-row loop with 1 client and above that loop's
 * rate with 8 (the words); the 8-rows-a-transaction loop is shown
 * too, a stricter mark: a loop that batches without a socket between.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "vram.h"

extern char **environ;

static char build[PATH_MAX], vram_exe[PATH_MAX + 16], top[128];
static char sock_path[256];
static double seconds = 1.0;
static int serial;                  /* numbers each server's folder */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double pct(double *v, int n, double p)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* ---- processes -------------------------------------------------------------------- */

static double last_cpu_ms;         /* the CPU time of run_argv's last child */

/* Runs argv (searched on PATH) to its end, its stdout into out (NULL:
 * /dev/null), stderr to /dev/null.  Returns its exit status, -1 if it could
 * not start; its CPU time (user + system) goes to last_cpu_ms. */
static int run_argv(char *const argv[], char *out, size_t cap)
{
    int fds[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out && pipe(fds) == 0) {
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        posix_spawn_file_actions_addclose(&fa, fds[1]);
    } else {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (fds[1] >= 0)
        close(fds[1]);
    size_t got = 0;
    if (fds[0] >= 0) {
        ssize_t n;
        while (!rc && got + 1 < cap && (n = read(fds[0], out + got, cap - 1 - got)) > 0)
            got += (size_t)n;
        close(fds[0]);
    }
    if (out)
        out[got] = '\0';
    if (rc)
        return -1;
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    last_cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ---- the two sides ---------------------------------------------------------------------- */

enum side { TSP, VRAM };
static bool have_tsp;

/* A fresh folder for one server: tsp's TS_SOCKET and TMPDIR, or vramd's
 * socket, queue, state and token. */
static void fresh_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/s%d", top, ++serial);
    mkdir(dir, 0700);
}

static pid_t daemon_pid;

static int start_tsp(unsigned slots)
{
    char dir[200], sock[256], n[16];
    fresh_dir(dir, sizeof(dir));
    snprintf(sock, sizeof(sock), "%s/ts.sock", dir);
    snprintf(n, sizeof(n), "%u", slots);
    setenv("TS_SOCKET", sock, 1);
    setenv("TMPDIR", dir, 1);
    setenv("TS_SLOTS", n, 1);
    char *argv[] = { "tsp", "-S", n, NULL };
    return run_argv(argv, NULL, 0) == 0 ? 0 : -1;
}

static void stop_tsp(void)
{
    char *kill_job[] = { "tsp", "-k", NULL }, *kill_server[] = { "tsp", "-K", NULL };
    run_argv(kill_job, NULL, 0);
    run_argv(kill_server, NULL, 0);
}

static int start_vramd(void)
{
    char dir[200], path[300];
    fresh_dir(dir, sizeof(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/vramd.sock", dir);
    setenv("VRAM_SOCKET", sock_path, 1);
    snprintf(path, sizeof(path), "%s/queue.db", dir);
    setenv("VRAM_DB", path, 1);
    snprintf(path, sizeof(path), "%s/state", dir);
    mkdir(path, 0700);
    setenv("VRAM_SIM_STATE", path, 1);
    snprintf(path, sizeof(path), "%s/token", dir);
    setenv("VRAM_TOKEN_FILE", path, 1);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        execl(vram_exe, "vram", "serve", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 500; i++) {
        vram_client *c;
        if (vram_client_open(sock_path, &c) == 0) {
            vram_client_close(c);
            daemon_pid = pid;
            return 0;
        }
        usleep(10000);
    }
    return -1;
}

static void stop_vramd(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
    }
    daemon_pid = 0;
}

static int api_submit(vram_client *c, const char *const *argv, uint64_t bytes, uint64_t *job)
{
    static const char *const env[] = { "PATH=/usr/bin:/bin", NULL };
    vram_submit s = { .argv = argv, .vram_bytes = bytes, .device = -1, .cwd = "/tmp", .env = env };
    return vram_client_submit(c, &s, job);
}

/* Cancels the holder and waits for it to be gone, so that no process of
 * the run outlives it. */
static void release_holder(uint64_t holder)
{
    vram_client *c;
    if (vram_client_open(sock_path, &c))
        return;
    vram_client_cancel(c, holder);
    for (int i = 0; i < 500; i++) {
        vram_job_list *l = NULL;
        bool done = !vram_client_job(c, holder, &l) && l->count && l->jobs[0].ended_unix_ms;
        vram_job_list_free(l);
        if (done)
            break;
        usleep(10000);
    }
    vram_client_close(c);
}

/* One submit through each side's command.  bytes: vram's budget. */
/* vram submit's --enforce for the rows that take the shim out; NULL: the default (hard). */
static const char *submit_enforce;

static int cli_submit(enum side s, const char *bytes, char *const *cmd)
{
    char *argv[18];
    int n = 0;
    if (s == TSP) {
        argv[n++] = "tsp";
    } else {
        argv[n++] = vram_exe;
        argv[n++] = "submit";
        argv[n++] = "--vram";
        argv[n++] = (char *)bytes;
        if (submit_enforce) {
            argv[n++] = "--enforce";
            argv[n++] = (char *)submit_enforce;
        }
        argv[n++] = "--";
    }
    for (int i = 0; cmd[i] && n < 17; i++)
        argv[n++] = cmd[i];
    argv[n] = NULL;
    return run_argv(argv, NULL, 0);
}

/* ---- CLI start -------------------------------------------------------------------------- */

/* Median start, in ms, of n runs of tsp_v and of vram_v, taken in turn
 * (one of each, again and again), so that both see the same load; cpu
 * (NULL: not wanted) gets each side's median CPU time. */
static void cli_pair_ms(int n, char **tsp_v, char **vram_v, double ms[2], double cpu[2])
{
    double *t[2] = { calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double)) };
    double *c[2] = { calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double)) };
    for (int i = 0; i < n; i++)
        for (int s = have_tsp ? 0 : 1; s < 2; s++) {
            double t0 = now_s();
            run_argv(s == TSP ? tsp_v : vram_v, NULL, 0);
            t[s][i] = (now_s() - t0) * 1000;
            c[s][i] = last_cpu_ms;
        }
    for (int s = 0; s < 2; s++) {
        ms[s] = s == VRAM || have_tsp ? median(t[s], n) : 0;
        if (cpu)
            cpu[s] = s == VRAM || have_tsp ? median(c[s], n) : 0;
        free(t[s]);
        free(c[s]);
    }
}

static void cli_start_ms(int n, char **vram_v, double *tsp_ms, double *vram_ms)
{
    char *tsp_v[] = { "tsp", "-V", NULL };
    double ms[2];
    cli_pair_ms(n, tsp_v, vram_v, ms, NULL);
    *tsp_ms = ms[TSP];
    *vram_ms = ms[VRAM];
}

static double bare_commit_ms(int n);

/* Median ms of n submits through the C client, each on a connection of
 * its own as the command makes it: vramd's side of a command's submit. */
static double api_round_trip_ms(int n)
{
    static const char *const cmd[] = { "true", NULL };
    double *t = calloc((size_t)n, sizeof(double)), ms = -1;
    int i = 0;
    for (; t && i < n; i++) {
        vram_client *c;
        uint64_t job;
        double t0 = now_s();
        if (vram_client_open(sock_path, &c))
            break;
        int rc = api_submit(c, cmd, 20ull << 30, &job);
        vram_client_close(c);
        if (rc)
            break;
        t[i] = (now_s() - t0) * 1000;
    }
    if (t && i == n)
        ms = median(t, n);
    free(t);
    return ms;
}

/* n submits of `true` through each command in turn, each side with its
 * server and a job that holds its only slot: wall and CPU medians; then
 * what vramd's side of one takes (rt: the C client's round trip, sync: a
 * bare fsync'ed SQLite row on the same disk); first, n lists of the one
 * job (`tsp -l`, `vram queue`) into list_ms. */
static int cli_submit_ms(int n, double ms[2], double cpu[2], double *rt, double *sync, double list_ms[2])
{
    vram_client *c;
    uint64_t holder = 0;
    static const char *const hold[] = { "sleep", "3600", NULL };
    char *tsp_hold[] = { "sleep", "3600", NULL };
    if (have_tsp && (start_tsp(1) || cli_submit(TSP, NULL, tsp_hold)))
        return -1;
    if (start_vramd() || vram_client_open(sock_path, &c)) {
        if (have_tsp)
            stop_tsp();
        stop_vramd();
        return -1;
    }
    int rc = api_submit(c, hold, 21ull << 30, &holder);
    vram_client_close(c);
    char *tsp_true[] = { "tsp", "true", NULL };
    char *vram_true[] = { vram_exe, "submit", "--vram", "20GiB", "--", "true", NULL };
    char *tsp_list[] = { "tsp", "-l", NULL }, *vram_list[] = { vram_exe, "queue", NULL };
    if (!rc) {
        cli_pair_ms(n, tsp_list, vram_list, list_ms, NULL);     /* the holder alone */
        cli_pair_ms(n, tsp_true, vram_true, ms, cpu);
        *rt = api_round_trip_ms(n);
        *sync = bare_commit_ms(n);
    }
    if (have_tsp)
        stop_tsp();
    release_holder(holder);
    stop_vramd();
    return rc;
}

/* ---- CLI submits ------------------------------------------------------------------------- */

/* Submits per second through the command, from `procs` processes at once,
 * n in all, behind a job that holds the only slot. */
static double cli_submits(enum side s, int n, int procs)
{
    uint64_t holder = 0;
    if (s == TSP) {
        char *hold[] = { "sleep", "3600", NULL };
        if (start_tsp(1) || cli_submit(TSP, NULL, hold))
            return -1;
    } else {
        vram_client *c;
        static const char *const hold[] = { "sleep", "3600", NULL };
        if (start_vramd() || vram_client_open(sock_path, &c))
            return -1;
        int rc = api_submit(c, hold, 21ull << 30, &holder);
        vram_client_close(c);
        if (rc)
            return -1;
    }
    char *cmd[] = { "true", NULL };
    double t0 = now_s();
    int failed = 0;
    for (int p = 0; p < procs; p++) {
        if (fork() == 0) {
            int bad = 0;
            for (int i = p; i < n; i += procs)
                bad += cli_submit(s, "20GiB", cmd) != 0;
            _exit(bad ? 1 : 0);
        }
    }
    for (int p = 0; p < procs; p++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            failed++;
    }
    double rate = n / (now_s() - t0);
    if (s == TSP) {
        stop_tsp();
    } else {
        release_holder(holder);
        stop_vramd();
    }
    return failed ? -rate : rate;
}

/* ---- hand-over latency ------------------------------------------------------------------ */

static int read_stamps(const char *path, double *v, int cap)
{
    FILE *f = fopen(path, "r");
    int n = 0;
    long long ns;
    while (f && n < cap && fscanf(f, "%lld", &ns) == 1)
        v[n++] = (double)ns / 1e6;
    if (f)
        fclose(f);
    return n;
}

/* k jobs with one slot behind a gate job (all are queued before any runs);
 * adds k hand-overs (ms) to lat. */
static int handovers(enum side s, int k, double *lat, int at)
{
    if (s == TSP ? start_tsp(1) : start_vramd())
        return at;
    char dir[200];
    snprintf(dir, sizeof(dir), "%s/s%d", top, serial);
    /* The folder is the jobs' argument, never part of their script (--dir is the user's text). */
    char job[] = "date +%s%N >>\"$1/S\"; date +%s%N >>\"$1/E\"";
    char gate[] = "date +%s%N >>\"$1/S\"; while [ ! -e \"$1/GO\" ]; do sleep 0.01; done; date +%s%N >>\"$1/E\"";
    char *gate_cmd[] = { "sh", "-c", gate, "sh", dir, NULL }, *job_cmd[] = { "sh", "-c", job, "sh", dir, NULL };
    cli_submit(s, "14GiB", gate_cmd);
    for (int i = 0; i < k; i++)
        cli_submit(s, "14GiB", job_cmd);
    char go[260], ends[260], starts[260];
    snprintf(go, sizeof(go), "%s/GO", dir);
    snprintf(ends, sizeof(ends), "%s/E", dir);
    snprintf(starts, sizeof(starts), "%s/S", dir);
    close(open(go, O_WRONLY | O_CREAT, 0600));
    double e[256], st[256];
    int ne = 0;
    for (double t0 = now_s(); now_s() - t0 < 60; usleep(10000))
        if ((ne = read_stamps(ends, e, 256)) >= k + 1)
            break;
    usleep(20000);
    ne = read_stamps(ends, e, 256);
    int ns = read_stamps(starts, st, 256);
    qsort(e, (size_t)ne, sizeof(double), cmp_double);
    qsort(st, (size_t)ns, sizeof(double), cmp_double);
    for (int i = 0; i + 1 < ns && i < ne; i++)
        lat[at++] = st[i + 1] - e[i];
    if (s == TSP)
        stop_tsp();
    else
        stop_vramd();
    return at;
}

/* n lone jobs with one slot, each submitted once the last has ended and
 * a pause longer than a vramd's parked runner waits (VRAMD_PARK_MS, 250
 * ms) has passed: the start of a job with no runner to reuse, as a job
 * submitted now and then has.  Adds n latencies (ms: from just before its
 * submit command starts to the job's first stamp) to lat. */
static int lone_starts(enum side s, int n, double *lat, int at)
{
    if (s == TSP ? start_tsp(1) : start_vramd())
        return at;
    char dir[200], stamps[260];
    snprintf(dir, sizeof(dir), "%s/s%d", top, serial);
    snprintf(stamps, sizeof(stamps), "%s/L", dir);
    char job[] = "date +%s%N >>\"$1/L\"";
    char *cmd[] = { "sh", "-c", job, "sh", dir, NULL };
    double sent[64], st[64];
    int i = 0;
    for (; i < n && i < 64; i++) {
        usleep(300 * 1000);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);   /* date +%s%N's clock */
        sent[i] = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
        cli_submit(s, "1GiB", cmd);
        for (double t0 = now_s(); now_s() - t0 < 10 && read_stamps(stamps, st, 64) < i + 1;)
            usleep(2000);
    }
    int got = read_stamps(stamps, st, 64);
    for (int k = 0; k < got && k < i; k++)
        lat[at++] = st[k] - sent[k];
    if (s == TSP)
        stop_tsp();
    else
        stop_vramd();
    return at;
}

/* ---- many trivial jobs ------------------------------------------------------------------ */

static int count_finished_tsp(void)
{
    static char out[1 << 20];
    char *argv[] = { "tsp", "-l", NULL };
    run_argv(argv, out, sizeof(out));
    int n = 0;
    for (char *p = out; (p = strstr(p, " finished ")); p++)
        n++;
    return n;
}

static int count_finished_vram(vram_client *c)
{
    vram_job_list *l = NULL;
    int n = vram_client_jobs(c, NULL, 1, &l) ? 0 : (int)(l->succeeded + l->failed + l->canceled);
    vram_job_list_free(l);
    return n;
}

/* Seconds from the first of n submits (one after another) to the last end;
 * gated: the n are queued behind two jobs that hold both slots until a file
 * appears, and the seconds are from then to the last end (the submits left
 * out: what starting and ending jobs costs alone). */
static double trivial_jobs(enum side s, int n, bool gated)
{
    vram_client *c = NULL;
    if (s == TSP ? start_tsp(2) : start_vramd())
        return -1;
    if (s == VRAM && vram_client_open(sock_path, &c))
        return -1;
    char dir[200], go[260];
    snprintf(dir, sizeof(dir), "%s/s%d", top, serial);
    snprintf(go, sizeof(go), "%s/GO", dir);
    char gate[] = "while [ ! -e \"$1\" ]; do sleep 0.01; done";
    char *gate_cmd[] = { "sh", "-c", gate, "sh", go, NULL }, *cmd[] = { "true", NULL };
    int first = 0;
    for (int i = 0; gated && i < 2; i++, first++)
        cli_submit(s, "10GiB", gate_cmd);
    double t0 = now_s(), took = -1;
    for (int i = 0; i < n; i++)
        cli_submit(s, "10GiB", cmd);
    if (gated) {
        usleep(300000);             /* the runners started ahead are ready, as they would be */
        t0 = now_s();
        close(open(go, O_WRONLY | O_CREAT, 0600));
    }
    while (now_s() - t0 < 120) {
        if ((s == TSP ? count_finished_tsp() : count_finished_vram(c)) >= n + first) {
            took = now_s() - t0;
            break;
        }
        usleep(5000);
    }
    vram_client_close(c);
    if (s == TSP)
        stop_tsp();
    else
        stop_vramd();
    return took;
}

/* ---- durable submits against bare SQLite -------------------------------------------------- */

/* Rows per second into a WAL database with synchronous=FULL, `per_txn`
 * rows per transaction, for `seconds`; after `warm` one-row commits not
 * counted (1,100: past the first checkpoint, the log full size). */
static double sqlite_loop(int per_txn, int warm)
{
    char dir[200], path[300];
    fresh_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/bare.db", dir);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE jobs(id INTEGER PRIMARY KEY, spec TEXT NOT NULL)", NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, "INSERT INTO jobs(spec) VALUES(?)", -1, &ins, NULL);
    char spec[400];
    memset(spec, 'x', sizeof(spec) - 1);
    spec[sizeof(spec) - 1] = '\0';
    for (int i = 0; i < warm; i++) {
        sqlite3_bind_text(ins, 1, spec, -1, SQLITE_STATIC);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    long rows = 0;
    double t0 = now_s();
    while (now_s() - t0 < seconds) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int i = 0; i < per_txn; i++) {
            sqlite3_bind_text(ins, 1, spec, -1, SQLITE_STATIC);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
            rows += per_txn;
    }
    double rate = rows / (now_s() - t0);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return rate;
}

/* The least a server that answers after its fsync can do: a process that
 * reads a request line, writes one page to a log sized beforehand (as
 * vramd's is), fdatasyncs it and answers.  Its socket end; *pid its process. */
static int minimal_server(const char *dir, pid_t *pid)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    *pid = fork();
    if (*pid == 0) {
        close(sv[0]);
        char path[300], in[4096];
        static char page[4120];
        snprintf(path, sizeof(path), "%s/minimal.log", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        for (int i = 0; fd >= 0 && i < 1100; i++)
            if (pwrite(fd, page, sizeof(page), (off_t)i * (off_t)sizeof(page)) < 0)
                _exit(1);
        if (fd < 0 || fdatasync(fd) != 0)
            _exit(1);
        for (long k = 0;; k++) {
            struct pollfd p = { sv[1], POLLIN, 0 };
            if (poll(&p, 1, -1) < 0 || recv(sv[1], in, sizeof(in), 0) <= 0)
                _exit(0);
            if (pwrite(fd, page, sizeof(page), 32 + (k % 1000) * (off_t)sizeof(page)) < 0 || fdatasync(fd) != 0 ||
                send(sv[1], "{\"id\":1,\"ok\":true,\"job\":1}\n", 29, MSG_NOSIGNAL) != 29)
                _exit(1);
        }
    }
    close(sv[1]);
    if (*pid < 0) {
        close(sv[0]);
        return -1;
    }
    return sv[0];
}

/* One request to the minimal server and its answer: 0, or -1. */
static int minimal_call(int fd)
{
    static const char req[] = "{\"v\":1,\"id\":1,\"op\":\"submit\",\"argv\":[\"true\"],\"vram\":21474836480,"
                              "\"cwd\":\"/tmp\",\"env\":{\"PATH\":\"/usr/bin:/bin\"}}\n";
    char out[256];
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
        return -1;
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 30000) == 1 && recv(fd, out, sizeof(out), 0) > 0 ? 0 : -1;
}

/* Paired, 1 client: one commit of the bare loop (its log full size), one
 * request to the minimal server and one submit to vramd, in turn, for
 * `seconds`; the rate of each from its mean time.  All three see the same
 * moment of a shared machine's load, whose swings make rows taken a second
 * apart differ by half. */
static void paired_submits(double *bare_rate, double *api_rate, double *min_rate)
{
    char dir[200], path[300];
    fresh_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/bare.db", dir);
    sqlite3 *db;
    sqlite3_stmt *ins = NULL;
    vram_client *c = NULL;
    static const char *const hold[] = { "sleep", "3600", NULL }, *const cmd[] = { "true", NULL };
    uint64_t holder = 0, job;
    *bare_rate = *api_rate = *min_rate = -1;
    pid_t mpid = -1;
    int mfd = minimal_server(dir, &mpid);
    if (mfd < 0 || sqlite3_open(path, &db) != SQLITE_OK) {
        if (mfd >= 0) {
            close(mfd);
            waitpid(mpid, NULL, 0);
        }
        return;
    }
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE jobs(id INTEGER PRIMARY KEY, spec TEXT NOT NULL)", NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "INSERT INTO jobs(spec) VALUES(?)", -1, &ins, NULL);
    char spec[400];
    memset(spec, 'x', sizeof(spec) - 1);
    spec[sizeof(spec) - 1] = '\0';
    for (int i = 0; i < 1100; i++) {        /* past the first checkpoint: the log full size */
        sqlite3_bind_text(ins, 1, spec, -1, SQLITE_STATIC);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    if (!start_vramd() && !vram_client_open(sock_path, &c) && !api_submit(c, hold, 21ull << 30, &holder)) {
        double bare = 0, api = 0, mini = 0, t0 = now_s();
        long n = 0, failed = 0;
        while (now_s() - t0 < seconds) {
            double a = now_s();
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
            sqlite3_bind_text(ins, 1, spec, -1, SQLITE_STATIC);
            sqlite3_step(ins);
            sqlite3_reset(ins);
            failed += sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK;
            double b = now_s();
            failed += minimal_call(mfd) != 0;
            double m = now_s();
            failed += api_submit(c, cmd, 20ull << 30, &job) != 0;
            bare += b - a;
            mini += m - b;
            api += now_s() - m;
            n++;
        }
        if (n && bare > 0 && api > 0 && mini > 0) {
            *bare_rate = n / bare * (failed ? -1 : 1);
            *api_rate = n / api * (failed ? -1 : 1);
            *min_rate = n / mini * (failed ? -1 : 1);
        }
    }
    if (c)
        vram_client_close(c);
    if (holder)
        release_holder(holder);
    stop_vramd();
    close(mfd);
    waitpid(mpid, NULL, 0);
    sqlite3_finalize(ins);
    sqlite3_close(db);
}

/* Median ms of n one-row commits in the bare loop's set-up. */
static double bare_commit_ms(int n)
{
    char dir[200], path[300];
    fresh_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/bare.db", dir);
    sqlite3 *db;
    double *t = calloc((size_t)n, sizeof(double)), ms = -1;
    if (!t || sqlite3_open(path, &db) != SQLITE_OK) {
        free(t);
        return -1;
    }
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE jobs(id INTEGER PRIMARY KEY, spec TEXT NOT NULL)", NULL, NULL, NULL);
    char sql[480];
    snprintf(sql, sizeof(sql), "INSERT INTO jobs(spec) VALUES('%0400d')", 0);
    int i = 0;
    for (; i < n; i++) {
        double t0 = now_s();
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            break;
        t[i] = (now_s() - t0) * 1000;
    }
    if (i == n)
        ms = median(t, n);
    free(t);
    sqlite3_close(db);
    return ms;
}

typedef struct submitter {
    double until;
    long done, failed;
} submitter;

static void *submit_loop(void *arg)
{
    submitter *s = arg;
    vram_client *c;
    if (vram_client_open(sock_path, &c))
        return NULL;
    static const char *const argv[] = { "true", NULL };
    while (now_s() < s->until) {
        uint64_t job;
        if (api_submit(c, argv, 20ull << 30, &job))
            s->failed++;
        else
            s->done++;
    }
    vram_client_close(c);
    return NULL;
}

/* Durable submits per second over the socket from `clients` connections. */
static double api_submits(int clients)
{
    vram_client *c;
    static const char *const hold[] = { "sleep", "3600", NULL };
    uint64_t holder = 0;
    if (start_vramd() || vram_client_open(sock_path, &c))
        return -1;
    api_submit(c, hold, 21ull << 30, &holder);
    vram_client_close(c);
    submitter s[8];
    pthread_t t[8];
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        s[i] = (submitter){ t0 + seconds, 0, 0 };
        pthread_create(&t[i], NULL, submit_loop, &s[i]);
    }
    long done = 0, failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        done += s[i].done;
        failed += s[i].failed;
    }
    double rate = done / (now_s() - t0);
    release_holder(holder);
    stop_vramd();
    return failed ? -rate : rate;
}

/* ---- the table -------------------------------------------------------------------------- */

#define MAX_ROUNDS 16

/* The median of n values, a left as it was. */
static double median_of(const double *a, int n)
{
    double x[MAX_ROUNDS];
    memcpy(x, a, sizeof(double) * (size_t)n);
    return median(x, n);
}

/* A goal line (bench/goals.sh) for a row where vram should be no slower
 * than tsp: its ratio, lower_better as row() takes it. */
static void goal_vs_tsp(const char *goal, const double *t, const double *v, int n, bool lower_better,
                        const char *unit)
{
    double a = median_of(t, n), b = median_of(v, n);
    if (!(a > 0 && b > 0))
        return;
    double ratio = lower_better ? b / a : a / b;
    bench_goal(goal, "<= 1.00x tsp", ratio <= 1.0, "%.2fx (tsp %.2f %s, vram %.2f %s)", ratio, a, unit,
               b, unit);
}

static void row(const char *what, const char *unit, const double *a, const double *b, int n,
                bool lower_better, const char *a_name, const char *note)
{
    double x[MAX_ROUNDS], y[MAX_ROUNDS];
    memcpy(x, a, sizeof(double) * (size_t)n);
    memcpy(y, b, sizeof(double) * (size_t)n);
    double ma = median(x, n), mb = median(y, n);
    char left[32], ratio[48];
    if (ma > 0)
        snprintf(left, sizeof(left), "%10.2f %s", ma, unit);
    else
        snprintf(left, sizeof(left), "%13s", a_name ? "skipped" : "-");
    if (ma > 0 && mb > 0)
        snprintf(ratio, sizeof(ratio), "%.2fx %s", lower_better ? mb / ma : ma / mb,
                 (lower_better ? mb <= ma : mb >= ma) ? "(vram as fast or faster)" : "(vram slower)");
    else
        snprintf(ratio, sizeof(ratio), "-");
    printf("| %-46s | %-16s | %10.2f %-5s | %-32s | %s\n", what, left, mb, unit, ratio, note);
}

int main(int argc, char **argv)
{
    double rounds_arg = 3;
    const char *only = "", *where = "/tmp";
    char usage[160];
    snprintf(usage, sizeof(usage), "[--rounds 1-%d] [--seconds S] [--only start|submits|handover|jobs|durable] "
             "[--dir DIR]", MAX_ROUNDS);
    const bench_opt opts[] = {
        { .name = "--rounds", .value = &rounds_arg, .min = 1, .max = MAX_ROUNDS, .integer = true },
        { .name = "--seconds", .value = &seconds, .min = 0.01, .max = 3600 },
        { .name = "--only", .text = &only, .choices = "start|submits|handover|jobs|durable" },
        { .name = "--dir", .text = &where },
    };
    int arc = bench_args(argc, argv, "bench/tsp", usage, opts, sizeof(opts) / sizeof(opts[0]));
    if (arc)
        return arc == 1 ? 0 : 2;
    int rounds = (int)rounds_arg;
#define DO(name) (!*only || !strcmp(only, name))
    if (!bench_build_dir(build, sizeof(build))) {
        fprintf(stderr, "bench/tsp: cannot tell which build this is (/proc/self/exe)\n");
        return 1;
    }
    snprintf(vram_exe, sizeof(vram_exe), "%s/bin/vram", build);
    if (snprintf(top, sizeof(top), "%s/vram-bench-tsp-XXXXXX", where) >= (int)sizeof(top) || !mkdtemp(top)) {
        fprintf(stderr, "bench/tsp: cannot make a folder in --dir '%s': %s\n", where,
                strlen(where) + 22 >= sizeof(top) ? "the path is too long" : strerror(errno));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setenv("VRAM_BACKEND", "sim", 1);
    setenv("VRAM_SIM", "RTX 4090:24GiB", 1);
    setenv("VRAM_HISTORY", "-", 1);
    setenv("VRAM_HTTP", "127.0.0.1:0", 1);
    char *probe[] = { "tsp", "-V", NULL };
    have_tsp = run_argv(probe, NULL, 0) == 0;
    const char *why = have_tsp ? NULL : "task-spooler is not installed (apt-get install task-spooler)";

    enum { START, SUBMIT_START, LIST_WALL, SUBMIT_WALL, SUBMIT_CPU, SUBMIT_RT, SUBMIT_SYNC, ROW1, ROW8, JOBS,
           JOBS_RUN, JOBS_BARE, JOBS_RUN_BARE, SQL1, API1, SQL8, API8, SQL1W, PAIRED, MINIMAL, NMEAS };
    double v[NMEAS][2][MAX_ROUNDS] = { { { 0 } } };
    static double lat[2][MAX_ROUNDS * 64], lat_bare[MAX_ROUNDS * 64], lone[2][MAX_ROUNDS * 16],
        lone_exec[MAX_ROUNDS * 16];
    int nlat[2] = { 0, 0 }, nlat_bare = 0;
    /* 50 hand-overs a round: p99 of 3 rounds is then the second slowest
     * of 150, not (as with 20 a round) the slowest of 60, one hiccup. */
    const int n_submits = 100, k_hand = 50, n_jobs = 200, n_lone = 12;
    int nlone[2] = { 0, 0 }, nlone_exec = 0;
    for (int r = 0; r < rounds; r++) {
        if (DO("start")) {
            char *version[] = { vram_exe, "--version", NULL };
            /* A submit's start: all but the round trip (no daemon listens
             * there), which the submit rows measure. */
            char nowhere[PATH_MAX];
            snprintf(nowhere, sizeof(nowhere), "%s/nowhere.sock", top);
            char *submit[] = { vram_exe, "submit", "--socket", nowhere, "--vram", "1GiB", "--",
                               "true", NULL };
            cli_start_ms(300, version, &v[START][TSP][r], &v[START][VRAM][r]);
            cli_start_ms(300, submit, &v[SUBMIT_START][TSP][r], &v[SUBMIT_START][VRAM][r]);
            double ms[2] = { 0, 0 }, cpu[2] = { 0, 0 }, list[2] = { 0, 0 };
            cli_submit_ms(300, ms, cpu, &v[SUBMIT_RT][VRAM][r], &v[SUBMIT_SYNC][VRAM][r], list);
            for (int s = 0; s < 2; s++) {
                v[LIST_WALL][s][r] = list[s];
                v[SUBMIT_WALL][s][r] = ms[s];
                v[SUBMIT_CPU][s][r] = cpu[s];
            }
        }
        for (int turn = 0; turn < 2; turn++) {
            enum side s = (enum side)((turn + r) % 2);
            if (s == TSP && !have_tsp)
                continue;
            if (DO("submits")) {
                v[ROW1][s][r] = cli_submits(s, n_submits, 1);
                v[ROW8][s][r] = cli_submits(s, n_submits, 8);
            }
            if (DO("handover")) {
                nlat[s] = handovers(s, k_hand, lat[s], nlat[s]);
                /* vram's lone starts with the spawner and without
                 * (vramd's --spawner no), in turn, the first of the two
                 * changing with the round. */
                for (int k = 0; k < (s == VRAM ? 2 : 1); k++) {
                    bool exec_each = s == VRAM && (k + r) % 2 == 1;
                    if (exec_each)
                        setenv("VRAM_SPAWNER", "no", 1);
                    if (exec_each)
                        nlone_exec = lone_starts(VRAM, n_lone, lone_exec, nlone_exec);
                    else
                        nlone[s] = lone_starts(s, n_lone, lone[s], nlone[s]);
                    unsetenv("VRAM_SPAWNER");
                }
            }
            if (DO("jobs")) {
                v[JOBS][s][r] = trivial_jobs(s, n_jobs, false);
                v[JOBS_RUN][s][r] = trivial_jobs(s, n_jobs, true);
            }
        }
        /* vram's share of those rows that is its shim: the same jobs
         * submitted with --enforce off (no LD_PRELOAD in their processes),
         * after both sides' turns. */
        submit_enforce = "off";
        if (DO("handover"))
            nlat_bare = handovers(VRAM, k_hand, lat_bare, nlat_bare);
        if (DO("jobs")) {
            v[JOBS_BARE][VRAM][r] = trivial_jobs(VRAM, n_jobs, false);
            v[JOBS_RUN_BARE][VRAM][r] = trivial_jobs(VRAM, n_jobs, true);
        }
        submit_enforce = NULL;
        /* The disk's own rate, in turn with vramd's, on the same disk. */
        for (int turn = 0; turn < 2 && DO("durable"); turn++) {
            if ((turn + r) % 2 == 0) {
                v[SQL1][TSP][r] = sqlite_loop(1, 0);
                v[SQL8][TSP][r] = sqlite_loop(8, 0);
                v[SQL1W][TSP][r] = sqlite_loop(1, 1100);
            } else {
                v[API1][VRAM][r] = api_submits(1);
                v[API8][VRAM][r] = api_submits(8);
            }
        }
        if (DO("durable"))
            paired_submits(&v[PAIRED][TSP][r], &v[PAIRED][VRAM][r], &v[MINIMAL][VRAM][r]);
        fprintf(stderr, "bench/tsp: round %d of %d done\n", r + 1, rounds);
    }

    printf("vram %s  bench/tsp  (tsp: Debian's task-spooler; vramd on a simulated 24 GiB card; "
           "%d rounds, medians; %.1f s per rate row; servers' folders in %s)\n\n", vram_version(), rounds,
           seconds, where);
    printf("| %-46s | %-16s | %-16s | %-32s | %s\n", "measure", "tsp", "vram",
           "vram against tsp", "note");
    printf("|------------------------------------------------|------------------|------------------|"
           "----------------------------------|------\n");
    /* Only what was measured (--only) is shown. */
    if (DO("start")) {
        row("CLI start (tsp -V, vram --version)", "ms", v[START][TSP], v[START][VRAM], rounds, true, why,
            "median of 300 starts each, taken in turn");
        row("CLI start (tsp -V, vram submit)", "ms", v[SUBMIT_START][TSP], v[SUBMIT_START][VRAM],
            rounds, true, why, "the same; the submit up to its connect (no daemon there)");
        row("list with a server (tsp -l, vram queue)", "ms", v[LIST_WALL][TSP], v[LIST_WALL][VRAM], rounds, true,
            why, "one job listed, 300 each in turn; start to exit");
        row("submit with a server (tsp true, vram submit)", "ms", v[SUBMIT_WALL][TSP],
            v[SUBMIT_WALL][VRAM], rounds, true, why, "start to exit, 300 each in turn; vramd fsyncs first");
        row("the same, the command's own CPU time", "ms", v[SUBMIT_CPU][TSP], v[SUBMIT_CPU][VRAM],
            rounds, true, why, "user + system of the command (wait4), its server's left out");
        row("vramd's side of it: connect, submit, reply", "ms", v[SUBMIT_RT][TSP], v[SUBMIT_RT][VRAM], rounds,
            true, NULL, "the C client, a connection a submit (tsp keeps no disk copy)");
        row("of which the disk: one fsync'ed SQLite row", "ms", v[SUBMIT_SYNC][TSP], v[SUBMIT_SYNC][VRAM],
            rounds, true, NULL, "a bare WAL loop, synchronous=FULL, same disk");
    }
    if (DO("submits")) {
        row("CLI submits in a row", "/s", v[ROW1][TSP], v[ROW1][VRAM], rounds, false, why,
            "100 `true` jobs behind one that holds the slot");
        row("CLI submits, 8 submitters at once", "/s", v[ROW8][TSP], v[ROW8][VRAM], rounds, false, why,
            "the same from 8 processes");
    }
    double l50[2], l99[2];
    for (int s = 0; s < 2; s++) {
        l50[s] = pct(lat[s], nlat[s], 0.5);
        l99[s] = pct(lat[s], nlat[s], 0.99);
    }
    double b50 = pct(lat_bare, nlat_bare, 0.5), b99 = pct(lat_bare, nlat_bare, 0.99);
    if (DO("handover")) {
        row("end to next start, 1 slot, p50", "ms", &l50[TSP], &l50[VRAM], 1, true, why,
            "jobs stamp date +%s%N");
        row("end to next start, 1 slot, p99", "ms", &l99[TSP], &l99[VRAM], 1, true, why, "");
        row("  p50, vram's jobs without the shim", "ms", &l50[TSP], &b50, 1, true, why,
            "--enforce off: its share of the row above");
        row("  p99, vram's jobs without the shim", "ms", &l99[TSP], &b99, 1, true, why, "");
        double o50[2] = { pct(lone[TSP], nlone[TSP], 0.5), pct(lone[VRAM], nlone[VRAM], 0.5) };
        row("a lone job's submit to its start, p50", "ms", &o50[TSP], &o50[VRAM], 1, true, why,
            "12 a round, 300 ms apart: no runner to reuse");
        double x50 = pct(lone_exec, nlone_exec, 0.5);
        row("  the same, vram's runners exec'd", "ms", &o50[TSP], &x50, 1, true, why,
            "--spawner no: what the spawner spares");
    }
    if (DO("jobs")) {
        row("200 `true` jobs, 2 slots", "s", v[JOBS][TSP], v[JOBS][VRAM], rounds, true, why,
            "first submit to last end");
        row("the same, queued first: run time alone", "s", v[JOBS_RUN][TSP], v[JOBS_RUN][VRAM], rounds, true,
            why, "behind 2 jobs holding the slots; their end to the last end");
        row("  200 jobs, vram's without the shim", "s", v[JOBS][TSP], v[JOBS_BARE][VRAM], rounds, true, why,
            "--enforce off: its share of the rows above");
        row("  queued first, vram's without the shim", "s", v[JOBS_RUN][TSP], v[JOBS_RUN_BARE][VRAM], rounds,
            true, why, "");
    }
    double m[4];
    double tmp[4][MAX_ROUNDS];
    for (int i = 0; i < 4; i++) {
        int idx = (int[]){ SQL1, API1, SQL8, API8 }[i];
        memcpy(tmp[i], v[idx][i % 2 ? VRAM : TSP], sizeof(double) * (size_t)rounds);
        m[i] = median(tmp[i], rounds);
    }
    if (DO("durable")) {
        printf("\n| %-46s | %-16s | %-16s | %-32s | %s\n", "durable submits (C client)", "bare SQLite",
               "vramd", "vramd against the loop", "goal");
        printf("|------------------------------------------------|------------------|------------------|"
               "----------------------------------|------\n");
        printf("| %-46s | %12.0f /s  | %12.0f /s  | %-32.2f | >= 0.8: %s\n",
               "1 client (loop: 1 row a transaction)", m[0], m[1], m[0] > 0 ? m[1] / m[0] : 0,
               m[0] > 0 && m[1] >= 0.8 * m[0] ? "met" : "NOT MET");
        printf("| %-46s | %12.0f /s  | %12.0f /s  | %-32.2f | > 1: %s\n",
               "8 clients (loop: 1 row a transaction)", m[0], m[3], m[0] > 0 ? m[3] / m[0] : 0,
               m[0] > 0 && m[3] > m[0] ? "met" : "NOT MET");
        printf("| %-46s | %12.0f /s  | %12.0f /s  | %-32.2f | (stricter: > 1 %s)\n",
               "8 clients (loop: 8 rows a transaction)", m[2], m[3], m[2] > 0 ? m[3] / m[2] : 0,
               m[2] > 0 && m[3] > m[2] ? "met" : "not met");
        memcpy(tmp[0], v[SQL1W][TSP], sizeof(double) * (size_t)rounds);
        double warm = median(tmp[0], rounds);
        printf("| %-46s | %12.0f /s  | %12.0f /s  | %-32.2f | (its log full size: >= 0.8 %s)\n",
               "1 client (loop: 1 row, its log full size)", warm, m[1], warm > 0 ? m[1] / warm : 0,
               warm > 0 && m[1] >= 0.8 * warm ? "met" : "not met");
        memcpy(tmp[0], v[PAIRED][TSP], sizeof(double) * (size_t)rounds);
        memcpy(tmp[1], v[PAIRED][VRAM], sizeof(double) * (size_t)rounds);
        double pb = median(tmp[0], rounds), pv = median(tmp[1], rounds);
        printf("| %-46s | %12.0f /s  | %12.0f /s  | %-32.2f | (paired: >= 0.8 %s)\n",
               "1 client, in turn with that loop's commits", pb, pv, pb > 0 ? pv / pb : 0,
               pb > 0 && pv >= 0.8 * pb ? "met" : "not met");
        memcpy(tmp[2], v[MINIMAL][VRAM], sizeof(double) * (size_t)rounds);
        double pm = median(tmp[2], rounds);
        printf("| %-46s | %12.0f /s  | %12.0f /s  | %-32.2f | (any server's floor)\n",
               "in turn: a minimal server (read, fsync, reply)", pb, pm, pb > 0 ? pm / pb : 0);
        printf("| %-46s | %12.0f /s  | %12.0f /s  | %-32.2f |\n", "vramd against that minimal server", pm, pv,
               pm > 0 ? pv / pm : 0);
    }
    if (DO("start")) {
        goal_vs_tsp("CLI start: vram --version against tsp -V", v[START][TSP], v[START][VRAM], rounds, true,
                    "ms");
        goal_vs_tsp("CLI start: vram submit to its connect against tsp -V", v[SUBMIT_START][TSP],
                    v[SUBMIT_START][VRAM], rounds, true, "ms");
        goal_vs_tsp("CLI: vram queue with vramd against tsp -l, wall", v[LIST_WALL][TSP], v[LIST_WALL][VRAM],
                    rounds, true, "ms");
        goal_vs_tsp("CLI: vram submit with vramd against tsp true, wall", v[SUBMIT_WALL][TSP],
                    v[SUBMIT_WALL][VRAM], rounds, true, "ms");
        goal_vs_tsp("CLI: the same, the command's own CPU", v[SUBMIT_CPU][TSP], v[SUBMIT_CPU][VRAM], rounds,
                    true, "ms");
    }
    if (DO("handover")) {
        goal_vs_tsp("end to next start, 1 slot, p50", &l50[TSP], &l50[VRAM], 1, true, "ms");
        goal_vs_tsp("end to next start, 1 slot, p99", &l99[TSP], &l99[VRAM], 1, true, "ms");
    }
    if (DO("jobs"))
        goal_vs_tsp("200 true jobs, 2 slots", v[JOBS][TSP], v[JOBS][VRAM], rounds, true, "s");
    if (DO("jobs"))
        goal_vs_tsp("200 true jobs, 2 slots, queued first (run time alone)", v[JOBS_RUN][TSP],
                    v[JOBS_RUN][VRAM], rounds, true, "s");
    if (DO("durable") && m[0] > 0 && m[2] > 0) {
        bench_goal("durable submits, 1 client, against the bare 1-row loop", ">= 0.80", m[1] >= 0.8 * m[0],
                   "%.2f (%.0f /s against %.0f /s)", m[1] / m[0], m[1], m[0]);
        bench_goal("durable submits, 8 clients, against the bare 1-row loop", "> 1.00", m[3] > m[0],
                   "%.2f (%.0f /s against %.0f /s)", m[3] / m[0], m[3], m[0]);
    }
    printf("\nA negative rate means some submits failed.  Server folders under %s are removed.\n", top);
    return bench_remove_tree(top) == 0 ? 0 : 1;
}
