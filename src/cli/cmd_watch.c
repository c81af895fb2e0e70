/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_watch.c - `vram watch`: a live view of every GPU.
 *
 * On a terminal it redraws in place (alternate screen, cursor hidden): per
 * device a usage bar, a sparkline of the last minute, ours against others,
 * and the top processes; q or Ctrl-C quits and the terminal is restored
 * whatever way the loop ends.  When stdout is not a terminal it prints one
 * line per device per sample (or JSON lines with --json), for logs and
 * scripts.  Samples come from the monitor's sampler thread; when vramd
 * answers on its socket, ours, others and safe available are the daemon's
 * (asked each refresh), as `vram status` and the dashboard show them.
 * Utilisation, temperature and power are this machine's (NVML), where the
 * driver gives them.  It refreshes every second (--interval); TERM=dumb
 * gets lines instead of the full-screen view, NO_COLOR no colours.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define HISTORY_SAMPLES 6000
#define SPARK_WINDOW_MS 60000
#define TOP_PROCS 5

#define DEFAULT_REFRESH_MS 1000
#define MAX_REFRESH_MS 3600000

static const cli_flag flags[] = {
    { "count", 'c', "N", "stop after N refreshes", false },
    { "seconds", 's', "S", "stop after S seconds (more than 0; e.g. 90, 2m)", false },
    { "interval", 'i', "DURATION", "refresh every DURATION (default 1s; e.g. 500ms, 2s; a bare number is ms)", false },
    { "json", 0, NULL, "when not on a terminal, print JSON lines instead of text", false },
    { "lines", 0, NULL, "print lines even on a terminal (no full-screen view)", false },
    { "local", 0, NULL, "read the devices here, not vramd's view (leases of this process only)", false },
    { NULL, 0, NULL, NULL, false },
};

typedef struct watch {
    vram_ctx *ctx;
    vram_monitor *mon;
    cli_args *args;
    vram_client *client;            /* to vramd, while one answers */
    vram_snapshot *daemon;          /* its view at this refresh, or NULL */
    unsigned ndev;
    uint64_t interval_ms;           /* the refresh */
    bool unicode;
    bool color;                     /* SGR colours and bold: not with NO_COLOR or TERM=dumb */
    vram_sample *hist;
    struct termios saved;
    bool raw;
} watch;

/* ---- terminal ------------------------------------------------------------------ */

static void term_enter(watch *w)
{
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &w->saved) == 0) {
        struct termios t = w->saved;
        t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        w->raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    fputs("\033[?1049h\033[?25l", stdout);
    fflush(stdout);
}

static void term_leave(watch *w)
{
    if (w->raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &w->saved);
    fputs("\033[?25h\033[?1049l", stdout);
    fflush(stdout);
}

static int term_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return 80;
}

/* Waits up to ms for a key; true when it is q, Q or Ctrl-C's byte. */
static bool quit_key(const watch *w, uint64_t ms)
{
    if (!w->raw) {
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        return false;
    }
    struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
    if (poll(&p, 1, (int)ms) <= 0)
        return false;
    char c;
    while (read(STDIN_FILENO, &c, 1) == 1)
        if (c == 'q' || c == 'Q' || c == 3)
            return true;
    return false;
}

/* ---- figures ---------------------------------------------------------------------- */

/* Asks vramd for its view, once per refresh; a daemon that stops
 * answering leaves the local figures, and is asked again next time. */
static void refresh_daemon(watch *w)
{
    vram_snapshot_free(w->daemon);
    w->daemon = NULL;
    if (cli_has(w->args, "local"))
        return;
    if (cli_daemon_snapshot(w->args, &w->client, &w->daemon)) {
        vram_client_close(w->client);
        w->client = NULL;
        w->daemon = NULL;
    }
}

/* Device dev now: vramd's figures when it answered, else the monitor's
 * latest sample.  Nonzero when there is none yet.  d->procs is not set. */
static int device_now(watch *w, unsigned dev, vram_device_snapshot *d)
{
    if (w->daemon && dev < w->daemon->ndevices && !w->daemon->devices[dev].error) {
        *d = w->daemon->devices[dev];
        d->procs = NULL;
        d->nprocs = 0;
        return 0;
    }
    return vram_monitor_latest(w->mon, dev, d);
}

/* ---- drawing ---------------------------------------------------------------------- */

/* An SGR sequence, or nothing under NO_COLOR / TERM=dumb. */
static const char *sgr(const watch *w, const char *code)
{
    return w->color ? code : "";
}

/* " util 45% temp 62C power 180/300W" from this machine's latest sample:
 * only what the driver gives ("" on simulated cards). */
static const char *sensors_text(watch *w, unsigned dev, char *buf, size_t cap)
{
    vram_device_snapshot d;
    buf[0] = '\0';
    if (vram_monitor_latest(w->mon, dev, &d) != 0)
        return buf;
    const vram_device_info *in = &d.info;
    size_t at = 0;
    if (in->have & VRAM_HAVE_UTIL)
        at += (size_t)snprintf(buf + at, cap - at, "  util %u%%", in->util_percent);
    if ((in->have & VRAM_HAVE_TEMP) && at < cap)
        at += (size_t)snprintf(buf + at, cap - at, "  temp %dC", in->temperature_c);
    if ((in->have & VRAM_HAVE_POWER) && at < cap) {
        if (in->power_limit_mw)
            snprintf(buf + at, cap - at, "  power %.0f/%.0fW", in->power_mw / 1000.0,
                     in->power_limit_mw / 1000.0);
        else
            snprintf(buf + at, cap - at, "  power %.0fW", in->power_mw / 1000.0);
    }
    return buf;
}

/* The same as JSON fields (null where unknown), after a comma. */
static void sensors_json(watch *w, unsigned dev)
{
    vram_device_snapshot d;
    unsigned have = 0;
    if (vram_monitor_latest(w->mon, dev, &d) == 0)
        have = d.info.have;
    if (have & VRAM_HAVE_UTIL)
        printf(",\"util_percent\":%u", d.info.util_percent);
    else
        printf(",\"util_percent\":null");
    if (have & VRAM_HAVE_TEMP)
        printf(",\"temperature_c\":%d", d.info.temperature_c);
    else
        printf(",\"temperature_c\":null");
    if (have & VRAM_HAVE_POWER)
        printf(",\"power_watts\":%.3f", d.info.power_mw / 1000.0);
    else
        printf(",\"power_watts\":null");
    if ((have & VRAM_HAVE_POWER) && d.info.power_limit_mw)
        printf(",\"power_limit_watts\":%.3f", d.info.power_limit_mw / 1000.0);
    else
        printf(",\"power_limit_watts\":null");
}

/* The last minute of samples in `width` columns, each its bucket's maximum. */
static void sparkline(watch *w, unsigned dev, uint64_t total, int width)
{
    static const char *blocks[] = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
    static const char ascii[] = "_.-:=+*#";
    size_t n = 0;
    vram_monitor_history(w->mon, dev, w->hist, HISTORY_SAMPLES, &n);
    if (n == 0 || width <= 0)
        return;
    /* The newest sample sits at the right edge; a young monitor leaves the
     * left part of the minute blank. */
    int64_t from = (int64_t)w->hist[n - 1].t_ms + 1 - SPARK_WINDOW_MS;
    for (int col = 0; col < width; col++) {
        int64_t lo = from + (int64_t)col * SPARK_WINDOW_MS / width;
        int64_t hi = from + (int64_t)(col + 1) * SPARK_WINDOW_MS / width;
        uint64_t peak = 0;
        bool any = false;
        for (size_t i = 0; i < n; i++)
            if ((int64_t)w->hist[i].t_ms >= lo && (int64_t)w->hist[i].t_ms < hi) {
                any = true;
                if (w->hist[i].used_bytes > peak)
                    peak = w->hist[i].used_bytes;
            }
        if (!any) {
            fputc(' ', stdout);
            continue;
        }
        int level = total ? (int)((double)peak / (double)total * 7.999) : 0;
        if (level > 7)
            level = 7;
        if (w->unicode)
            fputs(blocks[level], stdout);
        else
            fputc(ascii[level], stdout);
    }
}

static void draw_processes(watch *w, unsigned dev)
{
    vram_proc procs[64];
    size_t n = 0;
    int rc = vram_device_processes(w->ctx, dev, procs, 64, &n);
    if (rc && rc != VRAM_ERANGE) {
        printf("  processes: not visible (%s)\033[K\n", vram_strerror(rc));
        return;
    }
    if (n > 64)
        n = 64;
    /* Largest first; n is small, a selection pass is enough. */
    for (size_t i = 0; i < n && i < TOP_PROCS; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < n; j++)
            if (procs[j].used_bytes > procs[best].used_bytes)
                best = j;
        vram_proc t = procs[i];
        procs[i] = procs[best];
        procs[best] = t;
    }
    if (n == 0) {
        printf("  no processes\033[K\n");
        return;
    }
    printf("  %8s  %-20s %10s\033[K\n", "PID", "PROCESS", "USED");
    char b[32], name[64];
    for (size_t i = 0; i < n && i < TOP_PROCS; i++)
        printf("  %8u  %-20.20s %10s\033[K\n", procs[i].pid,
               vram_text_escape(*procs[i].name ? procs[i].name : "?", name, sizeof(name)),
               procs[i].have & VRAM_HAVE_PROC_MEM ? cli_gib(procs[i].used_bytes, b, sizeof(b)) : "n/a");
    if (n > TOP_PROCS)
        printf("  ... and %zu more\033[K\n", n - TOP_PROCS);
}

static void draw_screen(watch *w)
{
    int cols = term_columns();
    time_t now = time(NULL);
    char clock[16];
    strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&now));
    printf("\033[H%svram watch%s  every %llu ms  q to quit  %s%s\033[K\n", sgr(w, "\033[1m"),
           sgr(w, "\033[0m"), (unsigned long long)w->interval_ms, clock,
           w->daemon ? "  figures from vramd" : "");
    if (vram_ctx_is_simulated(w->ctx))
        printf("%sSIMULATED DEVICES, %s%s\033[K\n", sgr(w, "\033[33m"), vram_ctx_notice(w->ctx),
               sgr(w, "\033[0m"));
    printf("\033[K\n");
    for (unsigned dev = 0; dev < w->ndev; dev++) {
        vram_device_snapshot d;
        char a[32], b[32], c[32];
        if (device_now(w, dev, &d) != 0) {
            printf("GPU %u: waiting for the first sample\033[K\n\033[K\n", dev);
            continue;
        }
        const vram_device_info *in = &d.info;
        char name[VRAM_NAME_MAX], sensors[96];
        printf("%sGPU %u%s %s  %s / %s  %.0f%%%s\033[K\n  ", sgr(w, "\033[1m"), dev, sgr(w, "\033[0m"),
               vram_text_escape(in->name, name, sizeof(name)),
               cli_gib(in->used_bytes, a, sizeof(a)), cli_gib(in->total_bytes, b, sizeof(b)),
               in->total_bytes ? 100.0 * (double)in->used_bytes / (double)in->total_bytes : 0.0,
               sensors_text(w, dev, sensors, sizeof(sensors)));
        cli_bar(stdout, in->used_bytes, in->total_bytes, cols - 6, w->unicode);
        printf("\033[K\n  last minute ");
        sparkline(w, dev, in->total_bytes, cols - 16);
        printf("\033[K\n  ours %s   others %s   safe available %s\033[K\n",
               cli_gib(d.leased_bytes, a, sizeof(a)), cli_gib(d.others_bytes, b, sizeof(b)),
               cli_gib(d.safe_available_bytes, c, sizeof(c)));
        draw_processes(w, dev);
        printf("\033[K\n");
    }
    printf("\033[J");
    fflush(stdout);
}

static void print_lines(watch *w, bool json)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    for (unsigned dev = 0; dev < w->ndev; dev++) {
        vram_device_snapshot d;
        if (device_now(w, dev, &d) != 0)
            continue;
        const vram_device_info *in = &d.info;
        if (json) {
            printf("{\"time\":\"%s.%03ldZ\",\"device\":%u,\"total_bytes\":%llu,\"used_bytes\":%llu,"
                   "\"free_bytes\":%llu,\"safe_available_bytes\":%llu,\"leased_bytes\":%llu,"
                   "\"others_bytes\":%llu,\"simulated\":%s,\"from_daemon\":%s",
                   when, ts.tv_nsec / 1000000, dev, (unsigned long long)in->total_bytes,
                   (unsigned long long)in->used_bytes, (unsigned long long)in->free_bytes,
                   (unsigned long long)d.safe_available_bytes, (unsigned long long)d.leased_bytes,
                   (unsigned long long)d.others_bytes, vram_ctx_is_simulated(w->ctx) ? "true" : "false",
                   w->daemon ? "true" : "false");
            sensors_json(w, dev);
            printf("}\n");
        } else {
            char a[32], b[32], c[32], e[32], f[32], sensors[96];
            printf("%s.%03ldZ gpu%u used %s free %s safe %s ours %s others %s%s\n", when,
                   ts.tv_nsec / 1000000, dev, cli_gib(in->used_bytes, a, sizeof(a)),
                   cli_gib(in->free_bytes, b, sizeof(b)), cli_gib(d.safe_available_bytes, c, sizeof(c)),
                   cli_gib(d.leased_bytes, e, sizeof(e)), cli_gib(d.others_bytes, f, sizeof(f)),
                   sensors_text(w, dev, sensors, sizeof(sensors)));
        }
    }
    fflush(stdout);
}

/* ---- the loop ------------------------------------------------------------------------ */

static int run(cli_args *a)
{
    if (a->nrest)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s'", a->rest[0]);
    uint64_t count = 0, seconds_ms = 0, refresh_ms = DEFAULT_REFRESH_MS;
    int rc;
    if ((cli_has(a, "count") && (rc = cli_uint(a, "count", 1, 1000000000, &count))) ||
        (cli_has(a, "seconds") && (rc = cli_duration_ms(a, "seconds", CLI_SECONDS, &seconds_ms))) ||
        (cli_has(a, "interval") && (rc = cli_duration_ms(a, "interval", CLI_MS, &refresh_ms))))
        return rc;
    /* 0 would mean "for ever" to the loop: refused, not taken. */
    if (cli_has(a, "seconds") && seconds_ms == 0)
        return cli_error(a, EXIT_USAGE, "--seconds: '%s' would stop before the first refresh: give "
                         "more than 0 (e.g. 90 or 2m), or leave it out to watch until q or Ctrl-C",
                         cli_get(a, "seconds"));
    if (refresh_ms == 0 || refresh_ms > MAX_REFRESH_MS)
        return cli_error(a, EXIT_USAGE, "--interval: '%s' is not a refresh from 1ms to 1h (e.g. 500ms, "
                         "2s)", cli_get(a, "interval"));
    watch w = { .args = a, .interval_ms = refresh_ms };
    if ((rc = cli_open(a, &w.ctx)))
        return rc;
    /* The monitor samples at the interval setting (VRAM_INTERVAL, 100ms by
     * default) for the sparkline, and never slower than the refresh. */
    uint64_t sample_ms = 100;
    vram_duration_parse(vram_options_get(vram_ctx_options(w.ctx), "interval"), 1, &sample_ms);
    if (sample_ms == 0 || sample_ms > refresh_ms)
        sample_ms = refresh_ms;
    w.hist = calloc(HISTORY_SAMPLES, sizeof(*w.hist));
    if (!w.hist || (rc = vram_device_count(w.ctx, &w.ndev)) ||
        (rc = vram_monitor_start(w.ctx, (unsigned)sample_ms, HISTORY_SAMPLES, &w.mon))) {
        rc = cli_fail(a, rc ? rc : VRAM_ENOMEM, "cannot start watching");
        free(w.hist);
        vram_ctx_close(w.ctx);
        return rc;
    }
    /* TERM=dumb (Emacs' shell, some CI logs) cannot place a cursor: lines.
     * NO_COLOR (no-color.org): any non-empty value turns colours off. */
    const char *term = getenv("TERM"), *no_color = getenv("NO_COLOR");
    bool dumb = term && !strcmp(term, "dumb");
    bool screen = isatty(STDOUT_FILENO) && !dumb && !cli_has(a, "lines") && !cli_has(a, "json");
    w.color = !dumb && !(no_color && *no_color);
    w.unicode = cli_unicode(stdout) && !dumb;
    cli_catch_signals();
    if (screen)
        term_enter(&w);
    else if (vram_ctx_is_simulated(w.ctx) && !cli_has(a, "json"))
        printf("# SIMULATED DEVICES, %s\n", vram_ctx_notice(w.ctx));
    refresh_daemon(&w);
    if (!screen && w.daemon && !cli_has(a, "json"))
        printf("# figures from vramd: ours is every vram lease of the machine\n");
    uint64_t start = 0, shown = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    start = (uint64_t)t0.tv_sec * 1000 + (uint64_t)t0.tv_nsec / 1000000;
    for (bool first = true;; first = false) {
        if (!first)
            refresh_daemon(&w);
        if (screen)
            draw_screen(&w);
        else
            print_lines(&w, cli_has(a, "json"));
        shown++;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        uint64_t now = (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
        if ((count && shown >= count) || (seconds_ms && now - start >= seconds_ms) || cli_interrupted)
            break;
        if (quit_key(&w, w.interval_ms) || cli_interrupted)
            break;
    }
    if (screen)
        term_leave(&w);
    vram_monitor_stop(w.mon);
    vram_snapshot_free(w.daemon);
    vram_client_close(w.client);
    vram_ctx_close(w.ctx);
    free(w.hist);
    return EXIT_OK;             /* q and Ctrl-C are the ordinary ways out */
}

const cli_command cmd_watch = {
    .name = "watch",
    .usage = "[--count N] [--seconds S] [--interval DURATION] [--lines] [--json]",
    .summary = "live view of every GPU: usage bar, last minute, ours vs. others, top processes",
    .description =
        "On a terminal the view redraws in place; q or Ctrl-C quits.  Otherwise (or with\n"
        "--lines) it prints one line per device per refresh; --json prints JSON lines.\n"
        "When vramd answers on its socket, ours, others and safe available are its figures\n"
        "(every lease of the machine); --local reads the devices in this process instead.\n"
        "Utilisation, temperature and power show where the NVIDIA driver gives them.\n"
        "It refreshes every second, or every --interval; --seconds 0 is refused (leave\n"
        "it out to watch until q or Ctrl-C).  TERM=dumb prints lines instead of the\n"
        "full-screen view; NO_COLOR turns colours off.\n"
        "Exit status: 0 (q and Ctrl-C too); 2 bad input.",
    .flags = flags,
    .run = run,
};
