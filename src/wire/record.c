/* SPDX-License-Identifier: MIT */
/*
 * wire/record.c - a daemon job's record, written by vramd into the reply to
 * its runner's claim and read back by the runner.
 *
 * {"argv":["python","gen.py"],"model":"latentsync","settings":{"frames":"64"},
 *  "ladder":"batch=1; offload=cpu","name":"","tier":"balanced","vram":0,
 *  "device":-1}
 *
 * The argv and settings are the job store's own JSON text, written once by
 * the daemon from the submit; the reader checks every value as it would a
 * client's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/record.h"

void vram__record_write(vram__json *j, const vram__job *row)
{
    vram__json_object_begin(j);
    vram__json_key(j, "argv");
    vram__json_raw(j, row->argv_json && *row->argv_json ? row->argv_json : "[]");
    vram__json_key(j, "settings");
    vram__json_raw(j, row->settings_json && *row->settings_json ? row->settings_json : "{}");
    vram__json_field_string(j, "model", row->model ? row->model : "");
    vram__json_field_string(j, "ladder", row->ladder ? row->ladder : "");
    vram__json_field_string(j, "name", row->name ? row->name : "");
    vram__json_field_string(j, "tier", row->tier);
    vram__json_field_uint(j, "vram", row->vram_bytes);
    vram__json_field_int(j, "device", row->device_pref);
    vram__json_field_uint(j, "time_ms", row->time_limit_ms);
    vram__json_object_end(j);
}

void vram__record_free(vram__record *r)
{
    for (size_t i = 0; r->argv && r->argv[i]; i++)
        free(r->argv[i]);
    free(r->argv);
    for (size_t i = 0; i < r->nsettings; i++)
        free(r->settings[i]);
    free(r->settings);
    free(r->model);
    free(r->ladder);
    free(r->name);
    memset(r, 0, sizeof(*r));
}

static int bad(const char *what)
{
    return vram__fail(VRAM_EPARSE, "the daemon's job record: %s", what);
}

/* A string member, copied; "" when absent. */
static int text(const vram__jv *o, const char *key, char **out)
{
    const vram__jv *v = vram__jv_get(o, key);
    const char *s = v ? vram__jv_str(v) : "";
    if (!s)
        return vram__fail(VRAM_EPARSE, "the daemon's job record: '%s' is not a string", key);
    if (!(*out = strdup(s)))
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    return 0;
}

int vram__record_read(const vram__jv *v, vram__record *out)
{
    memset(out, 0, sizeof(*out));
    out->device_pref = -1;
    if (!v || v->kind != VRAM__JV_OBJECT)
        return bad("not an object");
    const vram__jv *argv = vram__jv_get(v, "argv"), *settings = vram__jv_get(v, "settings");
    if (!argv || argv->kind != VRAM__JV_ARRAY || !argv->n)
        return bad("no command");
    if (settings && settings->kind != VRAM__JV_OBJECT)
        return bad("'settings' is not an object");
    int rc = 0;
    if (!(out->argv = calloc(argv->n + 1, sizeof(*out->argv))))
        rc = vram__fail(VRAM_ENOMEM, "out of host memory");
    for (size_t i = 0; !rc && i < argv->n; i++) {
        const char *s = vram__jv_str(argv->items[i]);
        if (!s)
            rc = bad("a word of the command is not a string");
        else if (!(out->argv[i] = strdup(s)))
            rc = vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    size_t n = settings ? settings->n : 0;
    if (!rc && n && !(out->settings = calloc(n, sizeof(*out->settings))))
        rc = vram__fail(VRAM_ENOMEM, "out of host memory");
    for (size_t i = 0; !rc && i < n; i++) {
        const char *value = vram__jv_str(settings->items[i]);
        if (!value) {
            rc = bad("a setting's value is not a string");
            break;
        }
        size_t len = strlen(settings->keys[i]) + strlen(value) + 2;
        if (!(out->settings[i] = malloc(len))) {
            rc = vram__fail(VRAM_ENOMEM, "out of host memory");
            break;
        }
        snprintf(out->settings[i], len, "%s=%s", settings->keys[i], value);
        out->nsettings++;
    }
    if (!rc)
        rc = text(v, "model", &out->model);
    if (!rc)
        rc = text(v, "ladder", &out->ladder);
    if (!rc)
        rc = text(v, "name", &out->name);
    char *tier = NULL;
    if (!rc && !(rc = text(v, "tier", &tier)))
        vram__strlcpy(out->tier, tier, sizeof(out->tier));
    free(tier);
    const vram__jv *device = vram__jv_get(v, "device");
    if (!rc && vram__jv_get(v, "vram") && !vram__jv_uint(vram__jv_get(v, "vram"), &out->vram_bytes))
        rc = bad("'vram' is not a byte count");
    if (!rc && vram__jv_get(v, "time_ms") && !vram__jv_uint(vram__jv_get(v, "time_ms"), &out->time_limit_ms))
        rc = bad("'time_ms' is not a count of milliseconds");
    if (!rc && device && device->kind == VRAM__JV_NUMBER && device->num >= 0 && device->num < 64)
        out->device_pref = (int)device->num;
    if (rc)
        vram__record_free(out);
    return rc;
}
