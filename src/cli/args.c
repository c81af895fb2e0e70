/* SPDX-License-Identifier: MIT */
/*
 * cli/args.c - the flag parser and the helpers every subcommand uses to
 * report bad input the same way.
 *
 * Accepts --name VALUE, --name=VALUE, -x VALUE, switches, and "--" before a
 * command to run.  Options of the library's table are accepted by every
 * subcommand and checked at once, so a bad --margin is refused before any
 * work starts, with the same message as a bad VRAM_MARGIN.
 */
#include <ctype.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

volatile int cli_interrupted;
const char *cli_invoked_as;

static int flag_count(const cli_command *cmd)
{
    int n = 0;
    while (cmd->flags && cmd->flags[n].name)
        n++;
    return n;
}

static int find_flag(const cli_command *cmd, const char *name, size_t len, char short_name)
{
    for (int i = 0; cmd->flags && cmd->flags[i].name; i++) {
        const cli_flag *f = &cmd->flags[i];
        if (short_name ? f->short_name == short_name
                       : strlen(f->name) == len && !strncmp(f->name, name, len))
            return i;
    }
    return -1;
}

static bool is_library_option(const char *name, size_t len)
{
    const char *opt;
    for (unsigned i = 0; !vram_option_describe(i, &opt, NULL, NULL); i++)
        if (strlen(opt) == len && !strncmp(opt, name, len))
            return true;
    return false;
}

bool cli_shadows(const cli_command *cmd, const char *name)
{
    return cmd && find_flag(cmd, name, strlen(name), 0) >= 0;
}

static void print_help(const cli_command *cmd)
{
    if (cli_invoked_as)
        printf("usage: %s %s\n\n%s\n", cli_invoked_as, cmd->usage, cmd->summary);
    else
        printf("usage: vram %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (cmd->description)
        printf("\n%s\n", cmd->description);
    if (flag_count(cmd)) {
        printf("\noptions:\n");
        for (const cli_flag *f = cmd->flags; f->name; f++) {
            char left[64];
            if (f->short_name)
                snprintf(left, sizeof(left), "-%c, --%s%s%s", f->short_name, f->name,
                         f->arg ? " " : "", f->arg ? f->arg : "");
            else
                snprintf(left, sizeof(left), "    --%s%s%s", f->name, f->arg ? " " : "",
                         f->arg ? f->arg : "");
            printf("  %-26s %s\n", left, f->help);
        }
    }
    printf("\nsettings (every command; flag or environment variable, the flag wins):\n");
    const char *name, *def, *help;
    for (unsigned i = 0; !vram_option_describe(i, &name, &def, &help); i++) {
        char env[64];
        snprintf(env, sizeof(env), "VRAM_%s", name);
        for (char *p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        char text[1024];
        if (strstr(help, "default"))    /* the help says it better */
            snprintf(text, sizeof(text), "%s", help);
        else
            snprintf(text, sizeof(text), "%s (default: %s)", help, *def ? def : "none");
        if (cli_shadows(cmd, name))     /* its own option above: env only */
            printf("  %-16s %-18s %s; only as %s here (--%s is this command's own)\n", "", env,
                   text, env, name);
        else
            printf("  --%-14s %-18s %s\n", name, env, text);
    }
}

/* The message names what was typed (an option, a value): escaped, as
 * cli_error's. */
static int usage_error(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    char text[4096], shown[8192];
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vram %s: %s (see 'vram %s --help')\n", cmd->name,
            vram_text_escape(text, shown, sizeof(shown)), cmd->name);
    return EXIT_USAGE;
}

/* A setting refused (from a flag or the environment): its message quotes
 * the value. */
static int setting_error(const cli_command *cmd)
{
    char shown[8192];
    fprintf(stderr, "vram %s: %s\n", cmd->name, vram_text_escape(vram_last_error(), shown, sizeof(shown)));
    return EXIT_USAGE;
}

static int store_flag(cli_args *a, int idx, const char *value)
{
    const cli_flag *f = &a->cmd->flags[idx];
    if (a->given[idx] && !f->repeat && f->arg)
        return usage_error(a->cmd, "--%s given twice", f->name);
    a->given[idx] = true;
    a->value[idx] = value;
    if (f->repeat) {
        const char **p = realloc(a->values[idx], (size_t)(a->nvalues[idx] + 1) * sizeof(*p));
        if (!p)
            return usage_error(a->cmd, "out of memory");
        p[a->nvalues[idx]++] = value;
        a->values[idx] = p;
    }
    return 0;
}

/* The daemon's places, where an empty setting means the default one: an
 * empty value typed as the flag is a mistake (an unset variable, say), not
 * a wish for the default folder, so it is refused. */
static const struct { const char *name, *wants; } no_empty_flag[] = {
    { "db", "a path" }, { "socket", "a path" }, { "token-file", "a path" }, { "socket-group", "a group" },
};

static int set_library_option(cli_args *a, const char *name, size_t len, const char *value)
{
    char opt[64], source[80];
    snprintf(opt, sizeof(opt), "%.*s", (int)len, name);
    snprintf(source, sizeof(source), "--%s", opt);
    for (size_t i = 0; !*value && i < sizeof(no_empty_flag) / sizeof(no_empty_flag[0]); i++)
        if (!strcmp(opt, no_empty_flag[i].name))
            return usage_error(a->cmd, "--%s needs %s, not ''", opt, no_empty_flag[i].wants);
    return vram_options_set(a->opts, opt, value, source) ? setting_error(a->cmd) : 0;
}

/* One "--name[=value]" at argv[*i]; may consume the next word. */
static int parse_long(cli_args *a, int argc, char **argv, int *i)
{
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int idx = find_flag(a->cmd, name, len, 0);
    bool lib = idx < 0 && is_library_option(name, len);
    if (idx < 0 && !lib)
        return usage_error(a->cmd, "unknown option '--%.*s'", (int)len, name);
    bool takes = lib || a->cmd->flags[idx].arg;
    const char *value = NULL;
    if (takes) {
        if (eq)
            value = eq + 1;
        else if (*i + 1 < argc)
            value = argv[++*i];
        else
            return usage_error(a->cmd, "--%.*s needs a value (%s)", (int)len, name,
                               lib ? "see settings" : a->cmd->flags[idx].arg);
    } else if (eq) {
        return usage_error(a->cmd, "--%.*s takes no value", (int)len, name);
    }
    return lib ? set_library_option(a, name, len, value) : store_flag(a, idx, value);
}

/* "-x VALUE" or "-xVALUE" or a switch. */
static int parse_short(cli_args *a, int argc, char **argv, int *i)
{
    char c = argv[*i][1];
    int idx = find_flag(a->cmd, NULL, 0, c);
    if (idx < 0)
        return usage_error(a->cmd, "unknown option '-%c'", c);
    const cli_flag *f = &a->cmd->flags[idx];
    const char *value = NULL;
    if (f->arg) {
        if (argv[*i][2])
            value = argv[*i] + 2;
        else if (*i + 1 < argc)
            value = argv[++*i];
        else
            return usage_error(a->cmd, "-%c needs a value (%s)", c, f->arg);
    } else if (argv[*i][2]) {
        return usage_error(a->cmd, "unknown option '%s'", argv[*i]);
    }
    return store_flag(a, idx, value);
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    a->dashdash = -1;
    if (flag_count(cmd) > CLI_MAX_FLAGS)
        return usage_error(cmd, "internal: too many flags");
    a->rest = calloc((size_t)argc + 1, sizeof(char *));
    if (!a->rest || vram_options_new(&a->opts))
        return usage_error(cmd, "out of memory");
    if (vram_options_load_env(a->opts))
        return setting_error(cmd);
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        int rc = 0;
        if (!strcmp(w, "--")) {
            a->dashdash = a->nrest;
            while (++i < argc)
                a->rest[a->nrest++] = argv[i];
            break;
        }
        if (!strcmp(w, "--help") || !strcmp(w, "-h")) {
            print_help(cmd);
            return -1;
        }
        if (!strncmp(w, "--", 2))
            rc = parse_long(a, argc, argv, &i);
        else if (w[0] == '-' && w[1] && !(w[1] >= '0' && w[1] <= '9'))
            rc = parse_short(a, argc, argv, &i);
        else
            a->rest[a->nrest++] = argv[i];
        if (rc)
            return rc;
    }
    return 0;
}

void cli_args_free(cli_args *a)
{
    for (int i = 0; i < CLI_MAX_FLAGS; i++)
        free(a->values[i]);
    free(a->rest);
    vram_options_free(a->opts);
    memset(a, 0, sizeof(*a));
}

const char *cli_get(const cli_args *a, const char *name)
{
    int idx = find_flag(a->cmd, name, strlen(name), 0);
    return idx >= 0 ? a->value[idx] : NULL;
}

bool cli_has(const cli_args *a, const char *name)
{
    int idx = find_flag(a->cmd, name, strlen(name), 0);
    return idx >= 0 && a->given[idx];
}

/* Messages name what the user gave (a file, a model, a value): they are
 * printed with control characters escaped (vram_text_escape). */
int cli_error(const cli_args *a, int status, const char *fmt, ...)
{
    va_list ap;
    char text[4096], shown[8192];
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vram %s: %s\n", a->cmd->name, vram_text_escape(text, shown, sizeof(shown)));
    return status;
}

int cli_fail(const cli_args *a, int rc, const char *what)
{
    char detail[8192], shown[1024];
    vram_text_escape(*vram_last_error() ? vram_last_error() : vram_strerror(rc), detail, sizeof(detail));
    if (what)   /* may be user text too (a trace's task name) */
        fprintf(stderr, "vram %s: %s: %s\n", a->cmd->name, vram_text_escape(what, shown, sizeof(shown)),
                detail);
    else
        fprintf(stderr, "vram %s: %s\n", a->cmd->name, detail);
    /* ENODEV: a device named (--device 7) that is not there. */
    bool bad_input = rc == VRAM_EINVAL || rc == VRAM_ERANGE || rc == VRAM_ENOENT ||
                     rc == VRAM_EPARSE || rc == VRAM_ENODEV;
    return bad_input ? EXIT_USAGE : rc == VRAM_ENOFIT || rc == VRAM_EBUDGET ? EXIT_NOFIT : EXIT_FAIL;
}

int cli_open(cli_args *a, vram_ctx **ctx)
{
    int rc = vram_ctx_open(ctx, a->opts);
    return rc ? cli_fail(a, rc, NULL) : 0;
}

static int flag_value_error(const cli_args *a, const char *flag)
{
    return cli_error(a, EXIT_USAGE, "--%s: %s", flag, vram_last_error());
}

int cli_size(const cli_args *a, const char *flag, uint64_t *out)
{
    return vram_size_parse(cli_get(a, flag), out) ? flag_value_error(a, flag) : 0;
}

int cli_duration_ms(const cli_args *a, const char *flag, unsigned bare_unit_ms, uint64_t *out)
{
    return vram_duration_parse(cli_get(a, flag), bare_unit_ms, out) ? flag_value_error(a, flag) : 0;
}

bool cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    /* Digits only: strtoull would take " 5", "+5" and, wrapping, "-1". */
    unsigned long long v = isdigit((unsigned char)*text) ? strtoull(text, &end, 10) : 0;
    if (!isdigit((unsigned char)*text) || *end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int cli_uint(const cli_args *a, const char *flag, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *text = cli_get(a, flag);
    if (!cli_parse_uint(text, min, max, out))
        return cli_error(a, EXIT_USAGE, "--%s: '%s' is not a whole number from %llu to %llu", flag,
                         text, (unsigned long long)min, (unsigned long long)max);
    return 0;
}

const char *cli_gib(uint64_t bytes, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.1f GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void cli_bar(FILE *f, uint64_t used, uint64_t total, int width, bool unicode)
{
    int filled = total ? (int)((double)used / (double)total * width + 0.5) : 0;
    if (filled > width)
        filled = width;
    fputc('[', f);
    for (int i = 0; i < width; i++)
        fputs(i < filled ? (unicode ? "█" : "#") : (unicode ? "·" : "."), f);
    fputc(']', f);
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool cli_unicode(FILE *f)
{
    static int cached = -1;
    if (cached < 0) {
        setlocale(LC_CTYPE, "");
        cached = !strcmp(nl_langinfo(CODESET), "UTF-8");
    }
    return cached && isatty(fileno(f));
}

bool cli_history_off(const cli_args *a)
{
    const char *path = vram_options_get(a->opts, "history");
    return path && !strcmp(path, "-");
}

int cli_client(cli_args *a, vram_client **c)
{
    const char *socket = vram_options_get(a->opts, "socket");
    int rc = vram_client_open(socket && *socket ? socket : NULL, c);
    return rc ? cli_fail(a, rc == VRAM_ENOENT ? VRAM_EIO : rc, NULL) : 0;
}

int cli_daemon_snapshot(cli_args *a, vram_client **c, vram_snapshot **out)
{
    *out = NULL;
    const char *socket = vram_options_get(a->opts, "socket");
    vram_client *own = NULL;
    int rc = c && *c ? 0 : vram_client_open(socket && *socket ? socket : NULL, &own);
    if (rc)
        return VRAM_ENOENT;
    rc = vram_client_snapshot(c && *c ? *c : own, out);
    if (c && !*c && !rc)
        *c = own;
    else
        vram_client_close(own);
    return rc;
}
