/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_submit.c - `vram submit`: queues jobs with the daemon, one from
 * the command line or a batch from a CSV file.
 *
 * A CSV batch has a header; the column `command` is the command line (run
 * by /bin/sh -c, with {key} from the row as a positional parameter, never
 * pasted into the script); `vram`, `model`, `ladder`,
 * `device`, `priority`, `name`, `key`, `time` and `enforce` say what their flags say; every other
 * column is a setting.  Rows are checked, here and by the daemon, before any
 * is queued: a bad row is named by its line, and either the file is refused
 * (the default) or, with --skip-bad, the good rows go and the bad ones are
 * listed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "vram", 'v', "SIZE", "the job's GPU memory budget", false },
    { "model", 'm', "NAME", "size the job from a model profile", false },
    { "set", 's', "KEY=VALUE", "a setting for the plan and for {KEY} (repeatable)", true },
    { "ladder", 'l', "RUNGS", "cheaper settings to retry with after an out-of-memory", false },
    { "device", 'd', "auto|N", "the GPU to use (default: wherever it fits best)", false },
    { "priority", 'p', "P", "-100 to 100; higher starts first (default 0)", false },
    { "name", 'n', "NAME", "a name for the job", false },
    { "time", 't', "LIMIT", "stop each attempt after LIMIT (90s, 30m, 2h; a bare number is minutes, as "
      "Slurm's): SIGTERM to every process it started, SIGKILL 5 s later; smaller jobs may start past it while it waits only when they end in time", false },
    { "key", 'k', "KEY", "an idempotency key: submitting again with it queues nothing new and prints the "
      "first job's id (safe to retry after a lost reply)", false },
    { "enforce", 0, "hard|soft|off", "how the shim holds the job to its budget (see vram run)", false },
    { "after", 0, "JOB[,JOB]", "start only once these jobs have ended, however they ended (repeatable)", true },
    { "afterok", 0, "JOB[,JOB]", "start only once these jobs have succeeded; if one fails or is canceled, "
      "this job ends canceled, saying which (repeatable)", true },
    { "output", 'o', "FILE", "write the job's output (stdout and stderr) to FILE, as you, instead of its "
      "log; FILE must be writable by you now", false },
    { "csv", 0, "FILE", "queue one job per row of FILE (- for stdin)", false },
    { "skip-bad", 0, NULL, "with --csv, queue the good rows when some are bad", false },
    { "json", 0, NULL, "print the job ids as JSON", false },
    { NULL, 0, NULL, NULL, false },
};

typedef struct job_flags {
    uint64_t vram, time_ms;
    const char *model, *ladder, *name;
    int device, priority;
} job_flags;

/* Checks the values a job is given (from flags or a CSV row).  NULL is a
 * value not given; an empty one is refused, as vram run refuses it (a CSV
 * row's empty cell is passed as NULL). */
static int check_job(const char *vram, const char *device, const char *priority, const char *ladder,
                     const char *time, const char *enforce, job_flags *out, char *err, size_t cap)
{
    if (enforce && strcmp(enforce, "hard") && strcmp(enforce, "soft") && strcmp(enforce, "off"))
        return snprintf(err, cap, "enforce: '%s' is not hard, soft or off", enforce), -1;
    if (vram && vram_size_parse(vram, &out->vram))
        return snprintf(err, cap, "vram: %s", vram_last_error()), -1;
    if (vram && !out->vram)
        return snprintf(err, cap, "vram: '%s': a budget of 0 bytes fits nothing", vram), -1;
    out->device = -1;
    uint64_t d;
    if (device && strcmp(device, "auto")) {
        if (!cli_parse_uint(device, 0, 63, &d))
            return snprintf(err, cap, "device: '%s' is not auto or a device number", device), -1;
        out->device = (int)d;
    }
    if (priority) {
        char *end;
        long v = strtol(priority, &end, 10);
        if (!*priority || *end || v < -100 || v > 100)
            return snprintf(err, cap, "priority: '%s' is not a whole number from -100 to 100", priority), -1;
        out->priority = (int)v;
    }
    if (time && (vram_duration_parse(time, 60000, &out->time_ms) || !out->time_ms))
        return snprintf(err, cap, "time: '%s' is not a time limit (90s, 30m, 2h; a bare number is minutes)",
                        time), -1;
    /* A ladder with budgets sizes the job by its first rung. */
    if (vram_ladder_check_text(ladder, out->vram, &out->vram))
        return snprintf(err, cap, "ladder: %s", vram_last_error()), -1;
    return 0;
}

/* ---- one job from the command line -------------------------------------------- */

#define MAX_DEPS 64

/* Job ids from text ("12" or "12,13"), appended to ids; -1 with err. */
static int parse_ids(const char *text, uint64_t *ids, size_t *n, char *err, size_t cap)
{
    const char *p = text;
    do {
        char word[64];
        size_t len = strcspn(p, ",");
        snprintf(word, sizeof(word), "%.*s", (int)(len < 63 ? len : 63), p);
        if (!cli_parse_uint(word, 1, INT64_MAX, &ids[*n]))
            return snprintf(err, cap, "'%s' is not a job id (a whole number from 1, as 'vram submit' "
                            "printed it; several as 12,13)", word), -1;
        if (++*n == MAX_DEPS)
            return snprintf(err, cap, "at most %d jobs", MAX_DEPS - 1), -1;
        p += len + (p[len] == ',');
    } while (*p);
    return 0;
}

/* The job ids of every --NAME (each "12" or "12,13"), into ids. */
static int dep_ids(cli_args *a, const char *name, uint64_t *ids, size_t *n)
{
    *n = 0;
    for (int i = 0; a->cmd->flags[i].name; i++) {
        if (strcmp(a->cmd->flags[i].name, name))
            continue;
        for (int v = 0; v < a->nvalues[i]; v++) {
            char err[256];
            if (parse_ids(a->values[i][v], ids, n, err, sizeof(err)))
                return cli_error(a, EXIT_USAGE, "--%s: %s", name, err);
        }
    }
    return 0;
}

/* An output file as an absolute path, checked now: it is opened (created
 * when missing) for appending as the user who submits, as the job will.
 * -1 with err. */
static int resolve_output(const char *file, char *out, size_t cap, char *err, size_t errcap)
{
    char shown[512];
    if (!*file)
        return snprintf(err, errcap, "give a file name"), -1;
    if (file[0] == '/') {
        if (strlen(file) >= cap)
            return snprintf(err, errcap, "the path is too long"), -1;
        snprintf(out, cap, "%s", file);
    } else {
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
            return snprintf(err, errcap, "cannot read the current directory"), -1;
        if ((size_t)snprintf(out, cap, "%s/%s", cwd, file) >= cap)
            return snprintf(err, errcap, "the path is too long"), -1;
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0)
        return snprintf(err, errcap, "'%s': cannot write it: %s", vram_text_escape(file, shown, sizeof(shown)),
                        strerror(errno)), -1;
    close(fd);
    return 0;
}

/* --output FILE (see resolve_output). */
static int output_path(cli_args *a, char *out, size_t cap)
{
    const char *file = cli_get(a, "output");
    char err[768];
    out[0] = '\0';
    if (file && resolve_output(file, out, cap, err, sizeof(err)))
        return cli_error(a, EXIT_USAGE, "--output%s%s", err[0] == '\'' ? " " : ": ", err);
    return 0;
}

/* One job from the command line, checked before anything is sent (a bad
 * value is said also when no daemon answers). */
typedef struct one_job {
    vram_submit s;
    uint64_t after[MAX_DEPS], afterok[MAX_DEPS];
    char output[4096];
    const char **settings;
} one_job;

static int check_one(cli_args *a, one_job *o)
{
    if (a->dashdash < 0 || a->dashdash >= a->nrest)
        return cli_error(a, EXIT_USAGE, "no command: give it after --, e.g. vram submit --vram 6GiB -- python gen.py");
    if (!*a->rest[a->dashdash])
        return cli_error(a, EXIT_USAGE, "the command after -- is empty");
    job_flags f = { 0 };
    char err[512];
    if (check_job(cli_get(a, "vram"), cli_get(a, "device"), cli_get(a, "priority"), cli_get(a, "ladder"),
                  cli_get(a, "time"), cli_get(a, "enforce"), &f, err, sizeof(err)))
        return cli_error(a, EXIT_USAGE, "--%s", err);
    if (cli_get(a, "ladder") && *cli_get(a, "ladder") && !cli_has(a, "model")) {
        vram_ladder *l = NULL;        /* a rung that would run the same command again */
        int bad = vram_ladder_parse(cli_get(a, "ladder"), &l) ||
                  vram_ladder_check_command(l, a->rest + a->dashdash, NULL);
        vram_ladder_free(l);
        if (bad)
            return cli_error(a, EXIT_USAGE, "--ladder: %s", vram_last_error());
    }
    if (!f.vram && !cli_has(a, "model"))
        return cli_error(a, EXIT_USAGE, "give --vram SIZE (the job's budget), --model NAME (to plan it) "
                         "or a --ladder with vram=SIZE on its rungs");
    size_t nafter = 0, nafterok = 0, nsettings = 0;
    int rc;
    if ((rc = dep_ids(a, "after", o->after, &nafter)) || (rc = dep_ids(a, "afterok", o->afterok, &nafterok)) ||
        (rc = output_path(a, o->output, sizeof(o->output))) || (rc = cli_settings(a, &o->settings, &nsettings)))
        return rc;
    o->s = (vram_submit){
        .version = VRAM_SUBMIT_VERSION,
        .argv = (const char *const *)(a->rest + a->dashdash),
        .vram_bytes = f.vram,
        .model = cli_get(a, "model"),
        .settings = o->settings,
        .nsettings = nsettings,
        .ladder = cli_get(a, "ladder"),
        .device = f.device,
        .priority = f.priority,
        .name = cli_get(a, "name"),
        .time_ms = f.time_ms,
        .key = cli_get(a, "key"),
        .time_limit_ms = f.time_ms,
        .enforce = cli_get(a, "enforce"),
        .after = o->after,
        .nafter = nafter,
        .afterok = o->afterok,
        .nafterok = nafterok,
        .output = *o->output ? o->output : NULL,
    };
    return 0;
}

/* Whether a failed submit's error is no answer from vramd (the connection
 * lost, no reply in time, an interrupt, a reply that cannot be read): it
 * came after the request went, so whether the job was queued is unknown
 * (`vram queue` says), and the input was not at fault. */
static bool unanswered(int rc)
{
    return rc == VRAM_EIO || rc == VRAM_ETIMEDOUT || rc == VRAM_ECANCELED || rc == VRAM_EPARSE;
}

static int send_one(cli_args *a, vram_client *c, const one_job *o)
{
    uint64_t job;
    int rc = vram_client_submit(c, &o->s, &job);
    if (rc) {
        int status = cli_fail(a, rc, unanswered(rc) ? "may not be queued" : "not queued");
        return unanswered(rc) ? EXIT_FAIL : status;
    }
    if (cli_has(a, "json"))
        printf("{\"job\":%llu}\n", (unsigned long long)job);
    else
        printf("%llu\n", (unsigned long long)job);
    return EXIT_OK;
}

/* ---- a CSV batch ------------------------------------------------------------------ */

enum { COL_COMMAND, COL_VRAM, COL_MODEL, COL_LADDER, COL_DEVICE, COL_PRIORITY, COL_NAME, COL_KEY, COL_TIME,
       COL_ENFORCE, COL_AFTER, COL_AFTEROK, COL_OUTPUT, COL_KNOWN };
static const char *const known[COL_KNOWN] = { "command", "vram", "model", "ladder", "device", "priority", "name",
                                              "key", "time", "enforce", "after", "afterok", "output" };

/* What --after/--afterok give every row of a batch (a row's own columns add
 * to them). */
typedef struct batch_deps {
    uint64_t after[MAX_DEPS], afterok[MAX_DEPS];
    size_t nafter, nafterok;
} batch_deps;

typedef struct batch_row {
    unsigned line;
    job_flags f;
    const char *cell[COL_KNOWN];
    const char *settings[CLI_CSV_MAX_FIELDS];
    size_t nsettings;
    char setting_text[CLI_CSV_MAX_FIELDS][256];
    batch_deps deps;                /* the flags' and the row's */
    char output[4096];              /* its output column, absolute, or "" */
    char error[512];
} batch_row;

/* A row's cell, NULL when empty: an empty cell is a value not given. */
static const char *given_cell(const batch_row *r, int col)
{
    return r->cell[col] && *r->cell[col] ? r->cell[col] : NULL;
}

/* Checks one row against the header; fills r or r->error. */
static void check_row(const cli_csv *csv, const int *col, size_t ri, const batch_deps *given, batch_row *r)
{
    const cli_csv_row *row = &csv->rows[ri];
    const cli_csv_row *head = &csv->rows[0];
    memset(r, 0, sizeof(*r));
    r->deps = *given;
    r->line = row->line;
    if (row->nfields != head->nfields) {
        snprintf(r->error, sizeof(r->error), "%zu columns where the header has %zu", row->nfields,
                 head->nfields);
        return;
    }
    for (size_t i = 0; i < row->nfields; i++) {
        if (col[i] >= 0) {
            r->cell[col[i]] = row->fields[i];
        } else if (*row->fields[i]) {
            snprintf(r->setting_text[r->nsettings], sizeof(r->setting_text[0]), "%s=%s",
                     head->fields[i], row->fields[i]);
            r->settings[r->nsettings] = r->setting_text[r->nsettings];
            r->nsettings++;
        }
    }
    const char *command = r->cell[COL_COMMAND];
    char err[400];
    if (!command || !*command)
        snprintf(r->error, sizeof(r->error), "the command is empty");
    else if (check_job(given_cell(r, COL_VRAM), given_cell(r, COL_DEVICE), given_cell(r, COL_PRIORITY),
                       r->cell[COL_LADDER], given_cell(r, COL_TIME), given_cell(r, COL_ENFORCE), &r->f, err,
                       sizeof(err)))
        snprintf(r->error, sizeof(r->error), "%s", err);
    else if (!r->f.vram && !(r->cell[COL_MODEL] && *r->cell[COL_MODEL]))
        snprintf(r->error, sizeof(r->error), "neither vram nor model: the job cannot be sized");
    else if (r->cell[COL_AFTER] && *r->cell[COL_AFTER] &&
             parse_ids(r->cell[COL_AFTER], r->deps.after, &r->deps.nafter, err, sizeof(err)))
        snprintf(r->error, sizeof(r->error), "after: %s", err);
    else if (r->cell[COL_AFTEROK] && *r->cell[COL_AFTEROK] &&
             parse_ids(r->cell[COL_AFTEROK], r->deps.afterok, &r->deps.nafterok, err, sizeof(err)))
        snprintf(r->error, sizeof(r->error), "afterok: %s", err);
    else if (r->cell[COL_OUTPUT] && *r->cell[COL_OUTPUT] &&
             resolve_output(r->cell[COL_OUTPUT], r->output, sizeof(r->output), err, sizeof(err)))
        snprintf(r->error, sizeof(r->error), "output: %s", err);
}

/* Whether the daemon refused a row for something in it (a size no device
 * holds, an unknown model or device), not for a reason of its own. */
static bool about_the_row(int rc)
{
    return rc == VRAM_ENOFIT || rc == VRAM_ENODEV || rc == VRAM_ENOENT || rc == VRAM_EINVAL ||
           rc == VRAM_ERANGE || rc == VRAM_EPARSE;
}

/* The job a good row asks for; argv holds its command. */
static const vram_submit *row_submit(const batch_row *r, const char *argv[4], vram_submit *s)
{
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = r->cell[COL_COMMAND];
    argv[3] = NULL;
    *s = (vram_submit){
        .version = VRAM_SUBMIT_VERSION,
        .argv = argv,
        .vram_bytes = r->f.vram,
        .model = r->cell[COL_MODEL] && *r->cell[COL_MODEL] ? r->cell[COL_MODEL] : NULL,
        .settings = r->settings,
        .nsettings = r->nsettings,
        .ladder = r->cell[COL_LADDER] && *r->cell[COL_LADDER] ? r->cell[COL_LADDER] : NULL,
        .device = r->f.device,
        .priority = r->f.priority,
        .name = r->cell[COL_NAME] && *r->cell[COL_NAME] ? r->cell[COL_NAME] : NULL,
        .time_ms = r->f.time_ms,
        .key = r->cell[COL_KEY] && *r->cell[COL_KEY] ? r->cell[COL_KEY] : NULL,
        .time_limit_ms = r->f.time_ms,
        .enforce = r->cell[COL_ENFORCE] && *r->cell[COL_ENFORCE] ? r->cell[COL_ENFORCE] : NULL,
        .after = r->deps.after,
        .nafter = r->deps.nafter,
        .afterok = r->deps.afterok,
        .nafterok = r->deps.nafterok,
        .output = *r->output ? r->output : NULL,
    };
    return s;
}

/* A batch file read and its header checked, before vramd is looked for. */
typedef struct batch {
    const char *path;
    batch_deps given;
    cli_csv csv;
    int col[CLI_CSV_MAX_FIELDS];
} batch;

static int read_batch(cli_args *a, batch *b)
{
    if (a->nrest)
        return cli_error(a, EXIT_USAGE, "with --csv, the commands come from the file, not '%s'", a->rest[0]);
    b->path = cli_get(a, "csv");
    int rc = dep_ids(a, "after", b->given.after, &b->given.nafter);
    if (rc || (rc = dep_ids(a, "afterok", b->given.afterok, &b->given.nafterok)))
        return rc;
    char err[512];
    if (cli_csv_read(b->path, &b->csv, err, sizeof(err)))
        return cli_error(a, EXIT_USAGE, "%s: %s", b->path, err);
    bool have_command = false;
    for (size_t i = 0; i < b->csv.rows[0].nfields; i++) {
        b->col[i] = -1;
        for (int k = 0; k < COL_KNOWN; k++)
            if (!strcmp(b->csv.rows[0].fields[i], known[k]))
                b->col[i] = k;
        have_command |= b->col[i] == COL_COMMAND;
    }
    if (!have_command) {
        unsigned line = b->csv.rows[0].line;
        cli_csv_free(&b->csv);
        return cli_error(a, EXIT_USAGE, "%s:%u: the header has no 'command' column", b->path, line);
    }
    if (b->csv.nrows < 2) {         /* nothing to queue is not a batch queued */
        cli_csv_free(&b->csv);
        return cli_error(a, EXIT_USAGE, "%s: a header and no job rows: nothing to queue", b->path);
    }
    return 0;
}

/* The batch's rows, each checked by the daemon too, then sent; frees the
 * file's text. */
static int submit_csv(cli_args *a, vram_client *c, batch *b)
{
    const char *path = b->path;
    cli_csv csv = b->csv;
    const int *col = b->col;
    const batch_deps given = b->given;
    int rc = EXIT_OK;
    /* Two passes, one row in memory at a time: every row checked, here and
     * by the daemon (can it size the job, can a device hold it), and every
     * bad one named before anything is queued; then the good ones sent. */
    size_t nrows = csv.nrows - 1, bad = 0;
    batch_row *r = malloc(sizeof(*r));
    bool *good = calloc(nrows ? nrows : 1, sizeof(*good));
    if (!r || !good) {
        free(r);
        free(good);
        cli_csv_free(&csv);
        return cli_error(a, EXIT_FAIL, "out of memory");
    }
    for (size_t i = 0; rc == EXIT_OK && i < nrows; i++) {
        check_row(&csv, col, i + 1, &given, r);
        const char *argv[4];
        vram_submit s;
        int why = *r->error ? 0 : vram_client_check(c, row_submit(r, argv, &s));
        if (why && !about_the_row(why))
            rc = cli_fail(a, why, "cannot check the batch with the daemon; nothing queued");
        else if (why)
            snprintf(r->error, sizeof(r->error), "%s", vram_last_error());
        if (*r->error) {
            char shown[2048];
            fprintf(stderr, "vram submit: %s:%u: %s\n", path, r->line, vram_text_escape(r->error, shown, sizeof(shown)));
            bad++;
        }
        good[i] = !*r->error;
    }
    if (rc == EXIT_OK && bad && !cli_has(a, "skip-bad")) {
        fprintf(stderr, "vram submit: %zu bad row%s: nothing queued (--skip-bad queues the good rows)\n",
                bad, bad == 1 ? "" : "s");
        rc = EXIT_USAGE;
    }
    size_t queued = 0, refused = 0;
    if (cli_has(a, "json") && rc == EXIT_OK)
        printf("{\"jobs\":[");
    for (size_t i = 0; rc == EXIT_OK && i < nrows; i++) {
        if (!good[i])
            continue;
        check_row(&csv, col, i + 1, &given, r);
        const char *argv[4];
        vram_submit s;
        uint64_t job;
        int src = vram_client_submit(c, row_submit(r, argv, &s), &job);
        if (src) {
            char shown[2048];
            fprintf(stderr, "vram submit: %s:%u: %s: %s\n", path, r->line,
                    unanswered(src) ? "may not be queued" : "not queued",
                    vram_text_escape(vram_last_error(), shown, sizeof(shown)));
            refused++;
            continue;
        }
        if (cli_has(a, "json"))
            printf("%s{\"line\":%u,\"job\":%llu}", queued ? "," : "", r->line, (unsigned long long)job);
        else
            printf("%llu\n", (unsigned long long)job);
        queued++;
    }
    if (cli_has(a, "json") && rc == EXIT_OK)
        printf("]}\n");
    if (rc == EXIT_OK)
        fprintf(stderr, "vram submit: queued %zu job%s from %s%s\n", queued, queued == 1 ? "" : "s", path,
                bad + refused ? " (some rows were not: see above)" : "");
    if (rc == EXIT_OK && (refused || bad))
        rc = queued ? EXIT_FAIL : EXIT_USAGE;
    free(good);
    free(r);
    cli_csv_free(&csv);
    return rc;
}

/* A job's own flags, which a --csv batch takes from its columns instead. */
static const char *const one_job_flags[] = { "vram", "model", "set", "ladder", "device", "priority", "name",
                                             "time", "key", "enforce" };

static int run(cli_args *a)
{
    if (cli_has(a, "csv") && cli_has(a, "output"))
        return cli_error(a, EXIT_USAGE, "--output is one job's file, not a batch's: give each row its own in "
                         "an 'output' column");
    for (size_t i = 0; cli_has(a, "csv") && i < sizeof(one_job_flags) / sizeof(one_job_flags[0]); i++)
        if (cli_has(a, one_job_flags[i]) && !strcmp(one_job_flags[i], "set"))
            return cli_error(a, EXIT_USAGE, "with --csv, a job's settings come from the file (a column a "
                             "setting), not --set");
        else if (cli_has(a, one_job_flags[i]))
            return cli_error(a, EXIT_USAGE, "with --csv, each job's %s comes from the file (a '%s' column), not "
                             "--%s", one_job_flags[i], one_job_flags[i], one_job_flags[i]);
    if (!cli_has(a, "csv") && cli_has(a, "skip-bad"))
        return cli_error(a, EXIT_USAGE, "--skip-bad is for a --csv batch (its bad rows), not one job");
    /* The command line, or the batch file, checked before vramd is looked
     * for: a bad value is named also when no daemon answers. */
    one_job *o = NULL;
    batch *b = NULL;
    int rc;
    if (cli_has(a, "csv"))
        rc = !(b = calloc(1, sizeof(*b))) ? cli_error(a, EXIT_FAIL, "out of host memory") : read_batch(a, b);
    else
        rc = !(o = calloc(1, sizeof(*o))) ? cli_error(a, EXIT_FAIL, "out of host memory") : check_one(a, o);
    bool batch_read = b && !rc;
    vram_client *c;
    if (!rc && !(rc = cli_client(a, &c))) {
        rc = o ? send_one(a, c, o) : submit_csv(a, c, b);
        batch_read = false;         /* submit_csv freed it */
        vram_client_close(c);
    }
    if (batch_read)
        cli_csv_free(&b->csv);
    if (o)
        free(o->settings);
    free(o);
    free(b);
    return rc;
}

const cli_command cmd_submit = {
    .name = "submit",
    .usage = "(--vram SIZE | --model NAME [--set KEY=VALUE ...]) [--ladder RUNGS] [--device auto|N] "
             "[--priority P] [--name NAME] [--time LIMIT] [--key KEY] [--after JOB] [--afterok JOB] "
             "[--output FILE] -- COMMAND [ARGS...]\n"
             "       vram submit --csv FILE [--skip-bad] [--after JOB] [--afterok JOB]",
    .summary = "queue a job (or a CSV batch of them) with vramd; prints each job's id",
    .description =
        "The job is on disk in the daemon's queue before its id is printed.  It runs when its\n"
        "memory fits, under 'vram run' with the same environment and folder as here.  A job\n"
        "that waits for room lets smaller ones start past it only when they cannot delay it:\n"
        "by their --time, the learnt duration of their model, or by fitting beside it.\n"
        "With --after/--afterok it waits (reason 'Dependency' in 'vram queue') until those\n"
        "jobs end; with --afterok, a job of them that does not succeed cancels it.  Its output\n"
        "is in its log ('vram log JOB'), or in --output FILE.\n"
        "CSV: a header row; the column 'command' is a command line for /bin/sh -c; a {key} in it\n"
        "is the row's value as one word (passed as \"${N}\", never read as shell text);\n"
        "'vram', 'model', 'ladder', 'device', 'priority', 'name', 'key', 'time', 'enforce',\n"
        "'after', 'afterok' and 'output' are as their flags; any other column is a setting.\n"
        "--after/--afterok hold every row of the batch (a row's own columns add to them).\n"
        "A bad row is named with its line; the file is then refused, or, with --skip-bad,\n"
        "the good rows are queued.\n"
        "Exit status: 0; 1 when some rows were not queued; 2 for bad input or nothing queued;\n"
        "3 when no device could ever hold the job (one job: its budget is over every device's size).",
    .flags = flags,
    .run = run,
};
