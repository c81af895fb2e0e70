/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_log.c - `vram log JOB [--follow]`: a daemon job's output.
 *
 * vramd reads the job's log for its owner (the socket's `log` op: who asks
 * is the kernel's word); a job with --output names its file instead, which
 * is read here, with the rights of the user who asks.  On a terminal,
 * control characters and broken UTF-8 are shown escaped (\e, \x07), never
 * acted on; into a pipe or a file the bytes go as they are.  --follow
 * prints what comes until the job ends: between rounds it sleeps on inotify
 * (the log file, or its folder until the file is there), which wakes it when
 * the job writes or closes its output; a round at least every second still
 * sees an end that writes nothing (a job canceled before it started).
 * Without inotify it asks every 200 ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/json_read.h"

static const cli_flag flags[] = {
    { "follow", 'f', NULL, "keep printing the output as it comes, until the job ends", false },
    { NULL, 0, NULL, NULL, false },
};

#define POLL_MS 200                 /* without inotify */
#define WATCH_MS 1000               /* with it: a round at least this often */
#define LINE_MAX_SHOWN 4096

/* Where the bytes go: raw, or (on a terminal) line by line, escaped. */
typedef struct sink {
    bool escape;
    char line[LINE_MAX_SHOWN + 8];
    size_t len;
} sink;

static void sink_flush(sink *s, bool newline)
{
    char shown[LINE_MAX_SHOWN * 4 + 8];
    s->line[s->len] = '\0';
    fputs(vram_text_escape(s->line, shown, sizeof(shown)), stdout);
    if (newline)
        fputc('\n', stdout);
    s->len = 0;
}

static void sink_put(sink *s, const unsigned char *p, size_t n)
{
    if (!s->escape) {
        fwrite(p, 1, n, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {     /* a progress bar's \r: its states, one a line */
            if (p[i] == '\n' || s->len)
                sink_flush(s, true);
            continue;
        }
        if (p[i] == '\0') {         /* shown, and kept from ending the text early */
            memcpy(s->line + s->len, "\\x00", 4);
            s->len += 4;
        } else {
            s->line[s->len++] = (char)p[i];
        }
        if (s->len >= LINE_MAX_SHOWN)
            sink_flush(s, false);
    }
}

static int unbase64(const char *in, unsigned char *out, size_t cap, size_t *n)
{
    unsigned v = 0;
    int bits = 0;
    *n = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *at = strchr(abc, *p);
        if (!at)
            return -1;
        v = v << 6 | (unsigned)(at - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (*n == cap)
                return -1;
            out[(*n)++] = (unsigned char)(v >> bits & 0xff);
        }
    }
    return 0;
}

/* One round: asks vramd for the job's state and what follows offset (or
 * the --output file's name), and prints it.  *more: output may follow. */
static int round_once(cli_args *a, vram_client *c, uint64_t job, uint64_t *offset, int *file, sink *s,
                      bool *ended, bool *got_any, char *path, size_t path_cap)
{
    char req[160], *reply = NULL;
    snprintf(req, sizeof(req), "{\"op\":\"log\",\"job\":%llu,\"offset\":%llu}", (unsigned long long)job,
             (unsigned long long)*offset);
    int rc = vram_client_call(c, req, 30000, &reply);
    if (rc)
        return cli_fail(a, rc, NULL);
    vram__json_doc *doc = NULL;
    char err[128];
    rc = vram__json_read(reply, strlen(reply), 0, &doc, err, sizeof(err));
    vram_free(reply);
    if (rc)
        return cli_error(a, EXIT_FAIL, "vramd's log reply is not JSON: %s", err);
    const vram__jv *root = vram__json_root(doc);
    const vram__jv *e = vram__jv_get(root, "ended");
    *ended = e && e->kind == VRAM__JV_BOOL && e->b;
    *got_any = false;
    const vram__jv *out = vram__jv_get(root, "output");
    const char *where = out && out->kind == VRAM__JV_STRING ? out->str : vram__jv_str(vram__jv_get(root, "log"));
    snprintf(path, path_cap, "%s", where && strlen(where) < path_cap ? where : "");
    if (out && out->kind == VRAM__JV_STRING) {
        /* --output: the user's own file, read with the user's own rights. */
        if (*file < 0 && (*file = open(out->str, O_RDONLY | O_CLOEXEC)) < 0) {
            char shown[512];
            rc = cli_error(a, EXIT_FAIL, "job %llu writes to %s, which cannot be read: %s",
                           (unsigned long long)job, vram_text_escape(out->str, shown, sizeof(shown)),
                           strerror(errno));
            vram__json_doc_free(doc);
            return rc;
        }
        unsigned char buf[65536];
        ssize_t n;
        while ((n = read(*file, buf, sizeof(buf))) > 0) {
            sink_put(s, buf, (size_t)n);
            *offset += (uint64_t)n;
            *got_any = true;
        }
        vram__json_doc_free(doc);
        return 0;
    }
    const char *data = vram__jv_str(vram__jv_get(root, "data_base64"));
    uint64_t next = *offset;
    vram__jv_uint(vram__jv_get(root, "offset"), &next);
    size_t len = strlen(data ? data : "");
    unsigned char *bytes = malloc(len / 4 * 3 + 3);
    size_t n = 0;
    if (!bytes || unbase64(data ? data : "", bytes, len / 4 * 3 + 3, &n)) {
        free(bytes);
        vram__json_doc_free(doc);
        return cli_error(a, EXIT_FAIL, "vramd's log reply could not be decoded");
    }
    sink_put(s, bytes, n);
    free(bytes);
    *got_any = n > 0;
    *offset = next;
    vram__json_doc_free(doc);
    return 0;
}

/* --follow's sleep between rounds.  The inotify watch is on the file once it
 * is there, else on its folder (for its creation); with no watch (no
 * inotify, no path, a folder that is not there yet) it is a plain timer. */
typedef struct watcher {
    int fd;                         /* inotify, or -1 */
    int wd;
    bool on_file;
} watcher;

/* True when it put a new watch: the caller reads once more before sleeping,
 * since what was written before the watch wakes no one. */
static bool watch_update(watcher *w, const char *path)
{
    if (w->on_file || !*path)
        return false;
    if (w->fd < 0 && (w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
        return false;
    int on_file = inotify_add_watch(w->fd, path, IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF |
                                                   IN_MOVE_SELF);
    if (on_file >= 0) {
        if (w->wd >= 0)
            inotify_rm_watch(w->fd, w->wd);
        w->wd = on_file;
        w->on_file = true;
        return true;
    }
    if (w->wd >= 0)                 /* already on its folder */
        return false;
    /* Not there yet: its folder tells when it is. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return false;
    *slash = '\0';
    w->wd = inotify_add_watch(w->fd, dir, IN_CREATE | IN_MOVED_TO);
    return w->wd >= 0;
}

static void watch_sleep(watcher *w)
{
    if (w->fd < 0 || w->wd < 0) {
        usleep(POLL_MS * 1000);
        return;
    }
    struct pollfd p = { .fd = w->fd, .events = POLLIN };
    if (poll(&p, 1, WATCH_MS) > 0) {
        char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(w->fd, events, sizeof(events)) > 0) {
        }
    }
}

static int run(cli_args *a)
{
    if (a->nrest != 1)
        return cli_error(a, EXIT_USAGE, a->nrest ? "give one job id, not %d" : "give a job id (see 'vram queue')",
                         a->nrest);
    uint64_t job;
    if (!cli_parse_uint(a->rest[0], 1, INT64_MAX, &job)) {
        char shown[128];
        return cli_error(a, EXIT_USAGE, "'%s' is not a job id (a whole number from 1, as 'vram submit' "
                         "printed it)", vram_text_escape(a->rest[0], shown, sizeof(shown)));
    }
    bool follow = cli_has(a, "follow");
    vram_client *c;
    int rc = cli_client(a, &c);
    if (rc)
        return rc;
    if (follow)
        cli_catch_signals();
    sink s = { .escape = isatty(STDOUT_FILENO) };
    uint64_t offset = 0;
    int file = -1;
    watcher w = { .fd = -1, .wd = -1 };
    char path[PATH_MAX];
    for (;;) {
        bool ended = false, got = false;
        if ((rc = round_once(a, c, job, &offset, &file, &s, &ended, &got, path, sizeof(path))))
            break;
        fflush(stdout);
        if (got)
            continue;               /* more may be there already */
        if (!follow || ended || cli_interrupted)
            break;
        if (!watch_update(&w, path))
            watch_sleep(&w);
    }
    if (w.fd >= 0)
        close(w.fd);
    if (s.len)
        sink_flush(&s, true);
    fflush(stdout);
    if (file >= 0)
        close(file);
    vram_client_close(c);
    return rc ? rc : cli_interrupted ? EXIT_INTERRUPTED : EXIT_OK;
}

const cli_command cmd_log = {
    .name = "log",
    .usage = "JOB [--follow]",
    .summary = "print a job's output (stdout and stderr); --follow streams it until the job ends",
    .description = "Only the job's owner (or root) may read it: vramd asks the kernel who is asking.\n"
                   "On a terminal, control characters are shown escaped (\\e, \\x07), never acted on.\n"
                   "A job submitted with 'vram submit --output FILE' is read from FILE, with your own rights.",
    .flags = flags,
    .run = run,
};
