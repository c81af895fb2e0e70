/* SPDX-License-Identifier: MIT */
/*
 * cli/main.c - `vram`: finds the subcommand and hands it the rest.
 *
 * Global help and version live here; everything else is in cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const cli_command *const commands[] = {
    &cmd_status,
    &cmd_watch,
    &cmd_leakcheck,
    &cmd_profiles,
    &cmd_estimate,
    &cmd_plan,
    &cmd_optimize,
    &cmd_calibrate,
    &cmd_run,
    &cmd_serve,
    &cmd_submit,
    &cmd_queue,
    &cmd_wait,
    &cmd_cancel,
    &cmd_log,
    &cmd_history,
    &cmd_report,
    &cmd_simulate,
};

static void print_usage(FILE *f)
{
    fprintf(f, "vram %s - keeps AI video generation inside the GPU memory it has\n\n"
               "usage: vram COMMAND [options]\n\ncommands:\n", vram_version());
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\n'vram COMMAND --help' tells more about one command and lists the settings\n"
               "every command takes (--backend, --sim, --margin, ...).\n");
}

int main(int argc, char **argv)
{
    /* Installed as vramd too: that name is `vram serve`. */
    const char *self = strrchr(argv[0], '/');
    if (!strcmp(self ? self + 1 : argv[0], "vramd")) {
        cli_args a;
        cli_invoked_as = "vramd";
        int rc = cli_parse(&cmd_serve, argc - 1, argv + 1, &a);
        if (rc == 0)
            rc = cmd_serve.run(&a);
        else if (rc < 0)
            rc = EXIT_OK;
        cli_args_free(&a);
        return rc;
    }
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, VRAM_SPAWNER_COMMAND))    /* vramd's, to fork its runners */
        return vram_daemon_spawner(argc, argv, main);
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_usage(stdout);
        return EXIT_OK;
    }
    /* Man pages and completion, from the same tables (docgen.c). */
    if (!strcmp(name, "--generate"))
        return cli_generate(commands, sizeof(commands) / sizeof(commands[0]), argc - 2, argv + 2);
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("vram %s\n", vram_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i]->name, name) != 0)
            continue;
        cli_args a;
        int rc = cli_parse(commands[i], argc - 2, argv + 2, &a);
        if (rc == 0)
            rc = commands[i]->run(&a);
        else if (rc < 0)
            rc = EXIT_OK;           /* --help */
        cli_args_free(&a);
        return rc;
    }
    char shown[1024];
    fprintf(stderr, "vram: unknown command '%s' (see 'vram --help')\n",
            vram_text_escape(name, shown, sizeof(shown)));
    return EXIT_USAGE;
}
