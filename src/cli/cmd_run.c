/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_run.c - `vram run`: one job, sized, admitted, watched, retried on
 * a cheaper rung when it runs out of GPU memory, and recorded.
 *
 * Everything happens in vram_job_run(); this file turns flags into a job
 * spec, prints the library's progress lines on stderr (stdout is the
 * job's), and exits with the job's own status.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "vram", 'v', "SIZE", "the job's GPU memory budget (e.g. 6GiB)", false },
    { "model", 'm', "NAME", "size the job from a model profile and plan it (see 'vram profiles')", false },
    { "set", 's', "KEY=VALUE", "a setting for the plan and for {KEY} in the command (repeatable)", true },
    { "device", 'd', "auto|N", "the GPU to use (default: wherever it fits best)", false },
    { "ladder", 'l', "RUNGS", "cheaper settings to retry with after an out-of-memory: \"k=v k=v; k=v\"", false },
    { "wait", 'w', "S", "give up when not admitted within S seconds (default: wait)", false },
    { "name", 'n', "NAME", "the job's name in the history", false },
    { "time", 't', "LIMIT", "stop each attempt after LIMIT (90s, 30m, 2h; a bare number is minutes, as Slurm's): "
      "SIGTERM to every process it started, SIGKILL 5 s later", false },
    { "quiet", 'q', NULL, "print only errors, not progress", false },
    { "enforce", 0, "hard|soft|off", "hold the job to its budget with the shim: refuse past it (hard), "
      "let it through and count the overage (soft), or not (default: hard where the shim is installed)", false },
    { "daemon-job", 0, "N", "(used by vramd) run the daemon's job N, as vramd recorded it", false },
    { "gate", 0, "FD", "(used by vramd, with --daemon-job) wait, started and ready, until vramd says go on this "
      "pipe; end at once when it says no or is gone", false },
    { NULL, 0, NULL, NULL, false },
};

/* The runner's lines quote the command and its errors; vram__say has
 * escaped them (under vramd this stderr is the job's log). */
static void print_line(void *user, const char *line)
{
    if (!*(const bool *)user)
        fprintf(stderr, "vram run: %s\n", line);
}

static void on_signal(int sig)
{
    (void)sig;
    vram_job_interrupt();
}

static int read_device(const cli_args *a, int *device)
{
    const char *d = cli_get(a, "device");
    *device = -1;
    if (!d || !strcmp(d, "auto"))
        return 0;
    uint64_t n;
    if (!cli_parse_uint(d, 0, 63, &n))
        return cli_error(a, EXIT_USAGE, "--device: '%s' is not auto or a device number", d);
    *device = (int)n;
    return 0;
}

/* `vram run --daemon-job N`: vramd's runner of job N, which gets the job
 * (command, budget, settings) from the daemon when it claims it. */
static int read_daemon_job(cli_args *a, vram_job_spec *spec, uint64_t *daemon_job)
{
    static const char *const own[] = { "vram", "model", "set", "ladder", "name", "device", "wait" };
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (cli_has(a, own[i]))
            return cli_error(a, EXIT_USAGE, "--daemon-job: --%s comes from vramd with the job, not from a flag",
                             own[i]);
    if (a->dashdash >= 0 && a->dashdash < a->nrest)
        return cli_error(a, EXIT_USAGE, "--daemon-job: the command comes from vramd with the job, not after --");
    uint64_t job = 0;
    int rc = cli_uint(a, "daemon-job", 1, UINT64_MAX / 2, &job);
    if (rc)
        return rc;
    *daemon_job = job;
    if (cli_has(a, "gate") && (rc = cli_uint(a, "gate", 0, 1023, &job)))
        return rc;
    spec->device = -1;
    spec->wait_ms = -1;
    spec->history = vram_options_get(a->opts, "history");
    if (spec->history && !*spec->history)
        spec->history = NULL;
    return 0;
}

/* --enforce, else VRAM_ENFORCE (how vramd hands a submit's on). */
static int read_enforce(cli_args *a, vram_job_spec *spec)
{
    spec->enforce = cli_get(a, "enforce");
    const char *from = "--enforce";
    if (!spec->enforce && getenv("VRAM_ENFORCE") && *getenv("VRAM_ENFORCE")) {
        spec->enforce = getenv("VRAM_ENFORCE");
        from = "VRAM_ENFORCE";
    }
    if (spec->enforce && strcmp(spec->enforce, "hard") && strcmp(spec->enforce, "soft") &&
        strcmp(spec->enforce, "off"))
        return cli_error(a, EXIT_USAGE, "%s: '%s' is not hard, soft or off", from, spec->enforce);
    return 0;
}

static int read_spec(cli_args *a, vram_job_spec *spec, uint64_t *daemon_job, const char ***settings)
{
    memset(spec, 0, sizeof(*spec));
    spec->version = VRAM_JOB_SPEC_VERSION;
    int rc0 = read_enforce(a, spec);
    if (rc0)
        return rc0;
    if (cli_has(a, "gate") && !cli_has(a, "daemon-job"))
        return cli_error(a, EXIT_USAGE, "--gate: only vramd's runners wait at a gate (with --daemon-job)");
    if (cli_has(a, "daemon-job"))
        return read_daemon_job(a, spec, daemon_job);
    if (a->dashdash < 0 || a->dashdash >= a->nrest)
        return cli_error(a, EXIT_USAGE, "no command: give it after --, e.g. vram run --vram 6GiB -- python gen.py");
    if (!*a->rest[a->dashdash])
        return cli_error(a, EXIT_USAGE, "the command after -- is empty");
    if (!cli_has(a, "vram") && !cli_has(a, "model") && !cli_has(a, "ladder"))
        return cli_error(a, EXIT_USAGE, "give --vram SIZE (the job's budget), --model NAME (to plan it) "
                         "or a --ladder with vram=SIZE on its rungs");
    int rc;
    if (cli_has(a, "vram") && (rc = cli_size(a, "vram", &spec->vram_bytes)))
        return rc;
    if (cli_has(a, "vram") && !spec->vram_bytes)
        return cli_error(a, EXIT_USAGE, "--vram: a budget of 0 bytes fits nothing");
    if ((rc = read_device(a, &spec->device)) || (rc = cli_settings(a, settings, &spec->nsettings)))
        return rc;
    uint64_t wait_ms = 0;
    if (cli_has(a, "wait") && (rc = cli_duration_ms(a, "wait", CLI_SECONDS, &wait_ms)))
        return rc;
    spec->wait_ms = cli_has(a, "wait") ? (int64_t)wait_ms : -1;
    if (cli_has(a, "time") && (rc = cli_duration_ms(a, "time", 60000u, &spec->time_limit_ms)))
        return rc;
    if (cli_has(a, "time") && !spec->time_limit_ms)
        return cli_error(a, EXIT_USAGE, "--time: a limit of 0 stops every job at once");
    spec->argv = a->rest + a->dashdash;
    spec->model = cli_get(a, "model");
    spec->settings = *settings;
    spec->ladder = cli_get(a, "ladder");
    spec->name = cli_get(a, "name");
    spec->history = vram_options_get(a->opts, "history");
    if (spec->history && !*spec->history)
        spec->history = NULL;
    if (spec->ladder) {
        vram_ladder *l;
        uint64_t first;
        if (vram_ladder_parse(spec->ladder, &l))
            return cli_error(a, EXIT_USAGE, "--ladder: %s", vram_last_error());
        int bad = vram_ladder_first_budget(l, spec->vram_bytes, &first);
        vram_ladder_free(l);
        if (bad)
            return cli_error(a, EXIT_USAGE, "--vram and --ladder: %s", vram_last_error());
    }
    return 0;
}

/* 'g' when vramd says go on --gate's pipe, 0 on anything else (no, or the
 * daemon gone: end of file); -1 when the descriptor is not open at all (a
 * person trying --gate, not vramd). */
static int wait_at_gate(const cli_args *a)
{
    uint64_t fd = 0;
    if (cli_uint(a, "gate", 0, 1023, &fd))
        return 0;
    char go = 0;
    ssize_t n;
    while ((n = read((int)fd, &go, 1)) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == EBADF)
        return -1;
    close((int)fd);
    return n == 1 && go == 'g' ? 'g' : 0;
}

/* Runner reuse: vramd's runner, its job ended, puts itself where the next
 * job it was given runs, as vramd would have started it there (spawn.c):
 * that job's log (folders made 0700, as the job's user), its --output,
 * its folder, and no end file left by an earlier job of that number.
 * False when it cannot: the runner then ends, and vramd starts a runner
 * of its own for the job, which says why in the job's log. */
static bool take_next(const vram_job_next *n)
{
    char log[sizeof(n->log)];
    memcpy(log, n->log, sizeof(log));
    fflush(stdout);
    fflush(stderr);
    return vram_job_log_enter(log, 1) == 0 &&
           vram_job_place_enter(n->end_file, n->output, n->cwd, "vram run") == 0;
}

static int run(cli_args *a)
{
    vram_job_spec spec;
    uint64_t daemon_job = 0;
    const char **settings = NULL;
    int rc = read_spec(a, &spec, &daemon_job, &settings);
    if (rc) {
        free(settings);
        return rc;
    }
    bool quiet = cli_has(a, "quiet");
    spec.say = print_line;
    spec.say_user = &quiet;
    vram_ctx *ctx;
    if ((rc = cli_open(a, &ctx))) {
        free(settings);
        return rc;
    }
    /* vramd's runner, its devices open and what it can learn before its
     * turn learned, waits here: 'g' once the daemon has recorded the start
     * (or at once, for a runner started ahead, whose claim then waits for
     * the turn), else (the daemon gone) it ends having said nothing. */
    if (cli_has(a, "gate"))
        vram_job_runner_warm();
    int gate = cli_has(a, "gate") ? wait_at_gate(a) : 'g';
    if (gate != 'g') {
        vram_ctx_close(ctx);
        free(settings);
        return gate < 0 ? cli_error(a, EXIT_USAGE, "--gate %s is not an open descriptor: --gate is vramd's, for "
                                    "the runners it starts", cli_get(a, "gate"))
                        : EXIT_OK;
    }
    if (vram_ctx_is_simulated(ctx) && !quiet)
        fprintf(stderr, "vram run: SIMULATED DEVICES, %s\n", vram_ctx_notice(ctx));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* vramd's runner goes on with its user's next jobs while vramd has
     * them (runner reuse): one exec for many short jobs. */
    vram_job_next next = { .job = 0 };
    bool reuse = daemon_job && cli_has(a, "gate");
    for (bool first = true; first || next.job; first = false) {
        if (!first) {
            if (vram_job_interrupted() || !take_next(&next))
                break;
            if (vram_ctx_is_simulated(ctx) && !quiet)
                fprintf(stderr, "vram run: SIMULATED DEVICES, %s\n", vram_ctx_notice(ctx));
            daemon_job = next.job;
        }
        vram_job_result res;
        rc = daemon_job ? vram_job_run_daemon_job(ctx, &spec, daemon_job, &res, reuse ? &next : NULL)
                        : vram_job_run(ctx, &spec, &res);
        if (rc)
            rc = cli_fail(a, rc, NULL);
        else
            rc = res.exit_status;
        if (!rc && res.record_error)
            rc = EXIT_OK;           /* the job's status stands; the message was said */
    }
    vram_ctx_close(ctx);
    free(settings);
    return rc;
}

const cli_command cmd_run = {
    .name = "run",
    .usage = "(--vram SIZE | --model NAME [--set KEY=VALUE ...]) [--device auto|N] [--ladder RUNGS] "
             "[--wait S] -- COMMAND [ARGS...]",
    .summary = "run one job inside its GPU memory budget, retrying on a cheaper rung after an out-of-memory",
    .description =
        "The job waits until its budget fits (through vramd when one runs), then starts with\n"
        "CUDA_VISIBLE_DEVICES, PYTORCH_CUDA_ALLOC_CONF (unless set), VRAM_PLAN (JSON), VRAM_LEASE\n"
        "and VRAM_BUDGET_BYTES in its environment, in a process group of its own.  {KEY} in\n"
        "COMMAND and ARGS is replaced by the rung's or the plan's value ({{ for a brace).\n"
        "A ladder is rungs separated by ';', each key=value words, optionally vram=SIZE; each\n"
        "rung keeps the settings of the one before.  With --model and no --ladder, the\n"
        "profile's ladder is used.  When the job dies of GPU out-of-memory (PyTorch's or the\n"
        "CUDA driver's message on stderr), it runs again on the next rung.  Every attempt goes\n"
        "into the history ('vram history', 'vram report').\n"
        "Exit status: the job's own; 127 when the command cannot be run; 2 for bad input;\n"
        "3 when the budget fits no device; 1 when it was not admitted in time.",
    .flags = flags,
    .run = run,
};
