/* SPDX-License-Identifier: MIT */
/*
 * core/options.c - reads and checks the settings of the table in options.h.
 *
 * Owns the rules for every setting: which values are accepted, where they
 * come from (default, VRAM_<NAME>, --<name>) and the message a bad value
 * gets.  The command and the daemon refuse bad values (exit 2); the library
 * opened with no options, living in someone else's process, warns once and
 * keeps the default.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hostport.h"
#include "core/options.h"

enum kind { STRING, PATH, ENUM, MARGIN, DURATION, SIZE, HOSTPORT };

static const struct option_row {
    const char *name;
    const char *def;
    enum kind kind;
    const char *choices;            /* "a|b|c" for ENUM */
    const char *help;
} rows[VRAM__OPT_COUNT] = {
#define VRAM__OPT_ROW(id, name, def, kind, choices, help) { name, def, kind, choices, help },
    VRAM_OPTION_LIST(VRAM__OPT_ROW)
#undef VRAM__OPT_ROW
};

int vram__option_find(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < VRAM__OPT_COUNT; i++)
        if (!strcmp(rows[i].name, name))
            return i;
    /* VRAM_SIM_STATE spells sim-state with an underscore. */
    char dashed[64];
    vram__strlcpy(dashed, name, sizeof(dashed));
    for (char *p = dashed; *p; p++)
        if (*p == '_')
            *p = '-';
    for (int i = 0; i < VRAM__OPT_COUNT; i++)
        if (!strcmp(rows[i].name, dashed))
            return i;
    return -1;
}

static bool enum_has(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, value, n))
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

/* Checks value against the row's kind; on failure the detail names source. */
static int check_value(const struct option_row *row, const char *value, const char *source)
{
    uint64_t u;
    double d;
    int is_pct;
    int rc = 0;

    switch (row->kind) {
    case STRING:
    case PATH:
        if (row->kind == PATH && strlen(value) >= 4096)
            return vram__fail(VRAM_EINVAL, "%s: path too long (%zu bytes)", source, strlen(value));
        return 0;
    case ENUM:
        if (!enum_has(row->choices, value))
            return vram__fail(VRAM_EINVAL, "%s: '%s' is not one of %s", source, value, row->choices);
        return 0;
    case MARGIN:
        rc = vram_margin_parse(value, &d, &u, &is_pct);
        break;
    case DURATION:
        rc = vram_duration_parse(value, 1, &u);
        if (!rc && u == 0)
            rc = vram__fail(VRAM_EINVAL, "'%s' is zero; give a positive duration such as 100ms", value);
        break;
    case SIZE:
        rc = vram_size_parse(value, &u);
        break;
    case HOSTPORT: {
        vram__hostport hp;
        rc = vram__hostport_parse(value, &hp);
        break;
    }
    }
    if (rc) {
        char why[768];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return vram__fail(rc, "%s: %s", source, why);
    }
    return 0;
}

int vram_options_new(vram_options **out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_options_new: NULL output");
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return vram__fail(VRAM_ENOMEM, "out of host memory for options");
    return 0;
}

void vram_options_free(vram_options *o)
{
    if (!o)
        return;
    for (int i = 0; i < VRAM__OPT_COUNT; i++)
        free(o->value[i]);
    free(o);
}

static int options_store(vram_options *o, int id, const char *value, int from)
{
    char *copy = strdup(value);
    if (!copy)
        return vram__fail(VRAM_ENOMEM, "out of host memory for option %s", rows[id].name);
    free(o->value[id]);
    o->value[id] = copy;
    o->from[id] = (unsigned char)from;
    return 0;
}

int vram_options_set(vram_options *o, const char *name, const char *value, const char *source)
{
    if (!o || !name || !value)
        return vram__fail(VRAM_EINVAL, "vram_options_set: NULL argument");
    int id = vram__option_find(name);
    if (id < 0)
        return vram__fail(VRAM_ENOENT, "unknown option '%s'", name);
    char flag[80];
    if (!source) {
        snprintf(flag, sizeof(flag), "--%s", rows[id].name);
        source = flag;
    }
    int rc = check_value(&rows[id], value, source);
    if (rc)
        return rc;
    bool from_env = !strncmp(source, "VRAM_", 5);
    return options_store(o, id, value, from_env ? VRAM__FROM_ENV : VRAM__FROM_FLAG);
}

static void env_name(int id, char *buf, size_t cap)
{
    snprintf(buf, cap, "VRAM_%s", rows[id].name);
    for (char *p = buf; *p; p++)
        *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
}

int vram_options_load_env(vram_options *o)
{
    if (!o)
        return vram__fail(VRAM_EINVAL, "vram_options_load_env: NULL options");
    for (int i = 0; i < VRAM__OPT_COUNT; i++) {
        char name[64];
        env_name(i, name, sizeof(name));
        const char *v = getenv(name);
        if (!v)
            continue;
        int rc = vram_options_set(o, rows[i].name, v, name);
        if (rc)
            return rc;
    }
    return 0;
}

void vram__options_load_env_lenient(vram_options *o)
{
    for (int i = 0; i < VRAM__OPT_COUNT; i++) {
        char name[64];
        env_name(i, name, sizeof(name));
        const char *v = getenv(name);
        if (v && vram_options_set(o, rows[i].name, v, name))
            vram__log(VRAM__LOG_WARN, "%s; keeping the default '%s'", vram_last_error(), rows[i].def);
    }
}

const char *vram_options_get(const vram_options *o, const char *name)
{
    int id = vram__option_find(name);
    if (!o || id < 0)
        return NULL;
    return vram__opt_str(o, id);
}

int vram_option_describe(unsigned i, const char **name, const char **def, const char **help)
{
    if (i >= VRAM__OPT_COUNT)
        return VRAM_ENOENT;
    if (name)
        *name = rows[i].name;
    if (def)
        *def = rows[i].def;
    if (help)
        *help = rows[i].help;
    return 0;
}

const char *vram__opt_str(const vram_options *o, int id)
{
    return o && o->value[id] ? o->value[id] : rows[id].def;
}

uint64_t vram__opt_ms(const vram_options *o, int id)
{
    uint64_t ms = 0;
    if (vram_duration_parse(vram__opt_str(o, id), 1, &ms))
        vram_duration_parse(rows[id].def, 1, &ms);
    return ms;
}

void vram__opt_margin(const vram_options *o, double *percent, uint64_t *bytes, int *is_percent)
{
    if (vram_margin_parse(vram__opt_str(o, VRAM__OPT_MARGIN), percent, bytes, is_percent))
        vram_margin_parse(rows[VRAM__OPT_MARGIN].def, percent, bytes, is_percent);
}

int vram__options_clone(const vram_options *src, vram_options **out)
{
    int rc = vram_options_new(out);
    if (rc || !src)
        return rc;
    for (int i = 0; i < VRAM__OPT_COUNT; i++)
        if (src->value[i] && (rc = options_store(*out, i, src->value[i], src->from[i]))) {
            vram_options_free(*out);
            *out = NULL;
            return rc;
        }
    return 0;
}
