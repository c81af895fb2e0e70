/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_profiles.c - `vram profiles`: the model profiles vram knows, and
 * `vram profiles show NAME`: one of them whole, with its tiers' estimates.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "json", 0, NULL, "print JSON", false },
    { NULL, 0, NULL, NULL, false },
};

static int list(cli_args *a)
{
    char *json;
    int rc;
    if (cli_has(a, "json")) {
        if ((rc = vram_profile_list_json(a->opts, &json)))
            return cli_fail(a, rc, NULL);
        printf("{\"profiles\":%s}\n", json);  /* the one --json shape: named lists */
        vram_free(json);
        return EXIT_OK;
    }
    vram_profile_entry *e;
    size_t n;
    if ((rc = vram_profile_list(a->opts, &e, &n)))
        return cli_fail(a, rc, NULL);
    printf("%-22s %-5s %s\n", "MODEL", "TIERS", "TITLE");
    for (size_t i = 0; i < n; i++) {
        if (e[i].error[0]) {
            printf("%-22s %-5s does not load: %s\n", e[i].name, "-", e[i].error);
            continue;
        }
        printf("%-22s %-5u %s%s\n", e[i].name, e[i].tiers, e[i].title,
               e[i].calibrated ? "  [calibrated]" : "");
        if (e[i].calibrated || e[i].shadows[0])
            printf("%-22s       %s%s%s\n", "", e[i].path, e[i].shadows[0] ? ", over " : "",
                   e[i].shadows);
    }
    if (n == 0)
        printf("(no profiles found; see the profiles setting)\n");
    free(e);
    return EXIT_OK;
}

static int show(cli_args *a, const char *name)
{
    vram_profile *p;
    /* The user's own command may read the user's own file; a name is
     * never taken for a path elsewhere (the daemon). */
    bool file = strchr(name, '/') || (strlen(name) > 4 && !strcmp(name + strlen(name) - 4, ".ini"));
    /* OWNER/REPO that is no file here: a Hugging Face id, looked up. */
    if (file && !strstr(name, ".ini") && access(name, F_OK) != 0)
        file = false;
    int rc = file ? vram_profile_load_file(name, &p) : vram_profile_load(a->opts, name, &p);
    if (rc)
        return cli_fail(a, rc, NULL);
    char *text;
    rc = cli_has(a, "json") ? vram_profile_to_json(p, &text) : vram_profile_describe(p, &text);
    vram_profile_free(p);
    if (rc)
        return cli_fail(a, rc, NULL);
    if (cli_has(a, "json"))
        printf("{\"profile\":%s}\n", text);  /* the one --json shape: named values */
    else
        fputs(text, stdout);
    vram_free(text);
    return EXIT_OK;
}

static int run(cli_args *a)
{
    if (a->nrest == 0)
        return list(a);
    if (!strcmp(a->rest[0], "show") && a->nrest == 2)
        return show(a, a->rest[1]);
    if (!strcmp(a->rest[0], "show"))
        return cli_error(a, EXIT_USAGE, "show takes one model name (see 'vram profiles')");
    return cli_error(a, EXIT_USAGE, "unexpected argument '%s' (use 'vram profiles show NAME')",
                     a->rest[0]);
}

const cli_command cmd_profiles = {
    .name = "profiles",
    .usage = "[show NAME] [--json]",
    .summary = "list the model profiles, or show one with its tiers, ladder and levers",
    .description =
        "Profiles are NAME.ini files in the folders of the profiles setting: your\n"
        "calibrated copies (~/.config/vram/profiles) first, then the shipped ones.  A\n"
        "calibrated copy is marked and says which file it hides.  'show' prints the\n"
        "components, stages, each tier's peak in the beefy, lightweight and sequential\n"
        "modes, the ladder and the optimizer's levers.\n"
        "Exit status: 0; 2 unknown model or a profile that does not parse (file:line).",
    .flags = flags,
    .run = run,
};
