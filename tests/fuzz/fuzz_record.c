/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_record.c - libFuzzer target: a daemon job's record as its
 * runner reads it from a claim reply must never crash, leak or read out of
 * bounds; a record it accepts is whole (a command, every string there, every
 * setting "key=value"), and one it refuses is not half read.
 */
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "wire/record.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_whole(const vram__record *r)
{
    if (!r->argv || !r->argv[0] || !r->model || !r->ladder || !r->name)
        abort();
    for (size_t i = 0; i < r->nsettings; i++)
        if (!r->settings[i] || !strchr(r->settings[i], '='))
            abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    vram__json_doc *doc;
    char err[128];
    if (vram__json_read((const char *)data, size, 0, &doc, err, sizeof(err)))
        return 0;
    vram__record r;
    int rc = vram__record_read(vram__json_root(doc), &r);
    vram__json_doc_free(doc);
    if (rc) {
        if (r.argv || r.settings || r.model)
            abort();                /* refused, and nothing half read */
        return 0;
    }
    check_whole(&r);
    vram__record_free(&r);
    return 0;
}
