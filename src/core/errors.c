/* SPDX-License-Identifier: MIT */
/*
 * core/errors.c - the error list's names and sentences, and the per-thread
 * detail message behind vram_last_error().
 *
 * Codes say what kind of failure it was; the detail says which value and
 * what would have been accepted.  The detail lives in thread-local storage
 * so that functions without a context (size parsing, options) can report as
 * richly as those with one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static _Thread_local char last_error[1024];

const char *vram_errname(int err)
{
    switch (err) {
    case 0:
        return "VRAM_OK";
#define NAME_CASE(name, value, text) \
    case (value):                    \
        return "VRAM_E" #name;
        VRAM_ERROR_LIST(NAME_CASE)
#undef NAME_CASE
    default:
        return "VRAM_E?";
    }
}

const char *vram_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define TEXT_CASE(name, value, text) \
    case (value):                    \
        return text;
        VRAM_ERROR_LIST(TEXT_CASE)
#undef TEXT_CASE
    default:
        return "unknown error";
    }
}

int vram_errcode(const char *name)
{
    if (!name)
        return VRAM_EINTERNAL;
    if (!strcmp(name, "VRAM_OK"))
        return 0;
#define CODE_BY_NAME(id, value, text) \
    if (!strcmp(name, "VRAM_E" #id))  \
        return value;
    VRAM_ERROR_LIST(CODE_BY_NAME)
#undef CODE_BY_NAME
    return VRAM_EINTERNAL;
}

const char *vram_last_error(void)
{
    return last_error;
}

int vram__fail(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return err;
}

int vram__check_version(const char *type, unsigned version, unsigned known)
{
    if (version <= known)
        return 0;
    return vram__fail(VRAM_EINVAL, "%s version %u: this libvram (%s) knows up to version %u; "
                      "the program was built against a newer vram.h", type, version,
                      vram_version(), known);
}

void vram__clear_error(void)
{
    last_error[0] = '\0';
}

void vram_free(void *p)
{
    free(p);
}

const char *vram_version(void)
{
    return VRAM_VERSION_STRING;
}

int vram_version_number(void)
{
    return VRAM_VERSION_NUMBER;
}
