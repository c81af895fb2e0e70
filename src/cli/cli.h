/* SPDX-License-Identifier: MIT */
/*
 * cli/cli.h - what the subcommands of `vram` share: the command table, the
 * flag parser, exit statuses and output helpers.
 *
 * The command is thin over include/vram.h, plus the renderers and the few
 * internals the library exports for it (core/exports.h).  Each subcommand lives in its own cmd_<name>.c and declares its
 * flags in a table; the options of the library's table (--backend, --sim,
 * --margin, ...) are accepted by every subcommand.
 */
#ifndef VRAM_CLI_H
#define VRAM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/exports.h"
#include "vram.h"

/* Exit statuses, documented in the README. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,                  /* the work failed (device error, job failed) */
    EXIT_USAGE = 2,                 /* bad input: flag, value, file, spec */
    EXIT_NOFIT = 3,                 /* nothing fits the memory there is */
    EXIT_LEAK = 4,                  /* leakcheck found memory growing */
    EXIT_INTERRUPTED = 130          /* Ctrl-C */
};

#define CLI_MAX_FLAGS 48

typedef struct cli_flag {
    const char *name;               /* "json" for --json */
    char short_name;                /* 'n' for -n, or 0 */
    const char *arg;                /* NULL: a switch; else what it takes ("SIZE") */
    const char *help;
    bool repeat;                    /* may be given more than once */
} cli_flag;

typedef struct cli_command cli_command;

typedef struct cli_args {
    const cli_command *cmd;
    const char *value[CLI_MAX_FLAGS];  /* last value given, NULL if absent */
    bool given[CLI_MAX_FLAGS];
    const char **values[CLI_MAX_FLAGS]; /* every value of a repeat flag */
    int nvalues[CLI_MAX_FLAGS];
    char **rest;                    /* positional arguments, then what follows -- */
    int nrest;
    int dashdash;                   /* index in rest of the first after --, or -1 */
    vram_options *opts;             /* library options: env, then flags */
} cli_args;

struct cli_command {
    const char *name;
    const char *usage;              /* after "vram NAME " */
    const char *summary;            /* one line */
    const char *description;        /* paragraphs for --help, or NULL */
    const cli_flag *flags;          /* terminated by a {NULL} row */
    int (*run)(cli_args *a);
};

/* The subcommands, in the order `vram --help` lists them. */
extern const cli_command cmd_status, cmd_watch, cmd_leakcheck, cmd_simulate;
extern const cli_command cmd_run, cmd_history, cmd_report;
extern const cli_command cmd_serve, cmd_submit, cmd_queue, cmd_wait, cmd_cancel, cmd_log;
extern const cli_command cmd_profiles, cmd_estimate, cmd_plan, cmd_optimize, cmd_calibrate;

/* Prints a man page or a completion script made from the command tables
 * (docgen.c): argv is what follows `--generate`. */
int cli_generate(const cli_command *const *cmds, size_t n, int argc, char **argv);

/* "vramd" when the program was started by that name (it is `vram serve`):
 * help then shows the name that was typed.  NULL otherwise. */
extern const char *cli_invoked_as;

/* Parses argv (after the command name) into a; on bad input prints one line
 * on stderr and returns EXIT_USAGE.  --help prints help and returns -1. */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *a);
void cli_args_free(cli_args *a);

/* True when cmd has a flag of its own named like the library setting
 * `name` (watch's --interval): the flag is the command's, and the setting
 * is then taken from its environment variable only.  Help, man pages and
 * completion list the name once. */
bool cli_shadows(const cli_command *cmd, const char *name);

/* The value of flag `name`, or NULL; true if the switch was given. */
const char *cli_get(const cli_args *a, const char *name);
bool cli_has(const cli_args *a, const char *name);

/* Prints "vram NAME: <message>" on stderr.  Returns status. */
int cli_error(const cli_args *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reports a library failure with vram_last_error() and returns the exit
 * status that fits the code (EXIT_USAGE for bad input, else EXIT_FAIL). */
int cli_fail(const cli_args *a, int rc, const char *what);

/* Opens a context from a->opts; on failure reports and returns a status. */
int cli_open(cli_args *a, vram_ctx **ctx);

/* Parses a size/duration/count flag or reports it (EXIT_USAGE). */
int cli_size(const cli_args *a, const char *flag, uint64_t *out);
int cli_duration_ms(const cli_args *a, const char *flag, unsigned bare_unit_ms, uint64_t *out);
int cli_uint(const cli_args *a, const char *flag, uint64_t min, uint64_t max, uint64_t *out);
/* The same for any text: digits only, from min to max. */
bool cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* "8.5 GiB": sizes in GiB with one decimal, as the README promises. */
const char *cli_gib(uint64_t bytes, char *buf, size_t cap);

/* Writes s as a JSON string (with quotes) to f. */
void cli_json_string(FILE *f, const char *s);

/* True when f is a terminal that shows UTF-8 (bars and sparklines). */
bool cli_unicode(FILE *f);

/* A bar of `width` cells filled to used/total. */
void cli_bar(FILE *f, uint64_t used, uint64_t total, int width, bool unicode);

/* The planning commands' shared inputs (plan_args.c).  cli_settings
 * gathers --set values and bare KEY=VALUE words (free *out with free);
 * cli_profile loads --model; cli_budget reads --vram SIZE or --device N
 * (opening *ctx for a device, GPU 0 when neither is given and `required`;
 * with `resolve`, *budget becomes the device's safe available memory now,
 * else it stays 0 for the library to read).  Each reports bad input and
 * returns the exit status. */
int cli_settings(const cli_args *a, const char ***out, size_t *n);
int cli_profile(const cli_args *a, vram_profile **p);
int cli_budget(cli_args *a, bool required, bool resolve, vram_ctx **ctx, uint64_t *budget,
               unsigned *device);

/* Durations the user typed: bare numbers in these units. */
#define CLI_MS 1u
#define CLI_SECONDS 1000u

/* ---- CSV batches (csv.c) ---- */

#define CLI_CSV_MAX_FIELDS 64

typedef struct cli_csv_row {
    unsigned line;                  /* where the record starts, 1-based */
    size_t nfields;
    char *fields[CLI_CSV_MAX_FIELDS];
} cli_csv_row;

typedef struct cli_csv {
    size_t nrows;                   /* the header is rows[0] */
    cli_csv_row *rows;
} cli_csv;

/* Reads path ("-": stdin).  On failure -1 with "line N: what" in err. */
int cli_csv_read(const char *path, cli_csv *out, char *err, size_t errcap);
void cli_csv_free(cli_csv *c);

/* Connects to the daemon (the "socket" setting); reports and returns an
 * exit status when none answers. */
int cli_client(cli_args *a, vram_client **c);

/* vramd's snapshot (vram_client_snapshot) when a daemon answers at the
 * "socket" option's path: 0 and *out.  VRAM_ENOENT when none answers (the
 * caller then reads the devices itself), or the daemon's error.  c may be
 * NULL; else a connection already in *c is used, and a new one is left
 * there for the next call. */
int cli_daemon_snapshot(cli_args *a, vram_client **c, vram_snapshot **out);

/* True when the "history" setting is "-", which records nothing: the
 * commands that read the history then say CLI_HISTORY_OFF, with the status
 * they give for an empty one, and open no file named "-". */
bool cli_history_off(const cli_args *a);
#define CLI_HISTORY_OFF "the run history is off (--history or VRAM_HISTORY is '-')"

/* Set by SIGINT/SIGTERM handlers that cli_catch_signals installs. */
extern volatile int cli_interrupted;
void cli_catch_signals(void);

#endif /* VRAM_CLI_H */
