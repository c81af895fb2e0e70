/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_serve.c - `vram serve` (also `vramd`): runs the daemon until
 * Ctrl-C or SIGTERM.
 *
 * The daemon lives in the library (vram_daemon_run); this file gives it a
 * stop pipe that the signal handlers write to, and prints its lines with a
 * time stamp on stderr.  Jobs it started go on after it stops.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { NULL, 0, NULL, NULL, false },
};

static int stop_pipe[2] = { -1, -1 };

static void on_stop(int sig)
{
    (void)sig;
    char b = 's';
    ssize_t w = write(stop_pipe[1], &b, 1);
    (void)w;
}

/* Under systemd, stderr goes to the journal (JOURNAL_STREAM says so), which
 * stamps every line itself. */
static bool journal;

static void print_line(void *user, const char *line)
{
    (void)user;
    if (journal) {
        fprintf(stderr, "%s\n", line);
        return;
    }
    /* localtime_r: lines come from the loop and the dashboard's threads,
     * and it reads the zone once (serve sets it), where localtime looks
     * at /etc/localtime again for every line. */
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&now, &tm));
    fprintf(stderr, "%s vramd: %s\n", when, line);
}

static int run(cli_args *a)
{
    if (a->nrest)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s'", a->rest[0]);
    journal = getenv("JOURNAL_STREAM") != NULL;
    tzset();                        /* the zone print_line's times are in */
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return cli_error(a, EXIT_FAIL, "cannot make a pipe");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    vram_daemon_config cfg = { .opts = a->opts, .stop_fd = stop_pipe[0], .say = print_line };
    int rc = vram_daemon_run(&cfg);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return rc ? cli_fail(a, rc, NULL) : EXIT_OK;
}

const cli_command cmd_serve = {
    .name = "serve",
    .usage = "[--socket PATH] [--db PATH] [--http ADDR:PORT] [--token-file PATH] [--socket-group GROUP] "
             "[--group-jobs yes]",
    .summary = "run vramd: the one queue and referee for every GPU job on this machine, with its dashboard",
    .description =
        "Jobs come in through 'vram submit' (or the dashboard, or the socket protocol), wait\n"
        "in a durable queue until their memory fits, and run under 'vram run' in sessions of\n"
        "their own: they go on if the daemon stops, and the next daemon adopts them.\n"
        "The socket is owner-only unless --socket-group names a group.  The dashboard and\n"
        "/metrics are on 127.0.0.1:7860; changes there need the token the daemon writes to\n"
        "--token-file at start.  Ctrl-C or SIGTERM stops it.  Also installed as 'vramd'.\n"
        "Under systemd (vramd.service and vramd.socket, installed by make install) it takes\n"
        "the socket systemd listens on, says when it is ready (Type=notify), and leaves the\n"
        "time stamps of its lines to the journal.\n"
        "Who may do what: identity is the kernel's (SO_PEERCRED).  A job is its submitter's:\n"
        "only they, root or the daemon's user may cancel it.  Run as root, vramd runs each\n"
        "job as its submitter.  Run as another user, it takes jobs only from that user,\n"
        "unless --group-jobs yes: then members of --socket-group may submit too, and THEIR\n"
        "JOBS RUN AS THE DAEMON'S USER - access to the socket is then the power to run code\n"
        "as that user, as with Docker's socket.",
    .flags = flags,
    .run = run,
};
