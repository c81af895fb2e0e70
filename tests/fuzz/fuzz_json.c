/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_json.c - libFuzzer target: the JSON reader must never
 * crash, leak, read out of bounds, or accept text with trailing junk; what
 * it accepts must be re-readable after a round trip through our writer.
 */
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"

/* Writes v back as JSON with the library's writer. */
static void write_back(vram__json *j, const vram__jv *v)
{
    switch (v->kind) {
    case VRAM__JV_NULL: vram__json_null(j); break;
    case VRAM__JV_BOOL: vram__json_bool(j, v->b); break;
    case VRAM__JV_NUMBER: vram__json_raw(j, v->str); break;
    case VRAM__JV_STRING: vram__json_string(j, v->str); break;
    case VRAM__JV_ARRAY:
        vram__json_array_begin(j);
        for (size_t i = 0; i < v->n; i++)
            write_back(j, v->items[i]);
        vram__json_array_end(j);
        break;
    case VRAM__JV_OBJECT:
        vram__json_object_begin(j);
        for (size_t i = 0; i < v->n; i++) {
            vram__json_key(j, v->keys[i]);
            write_back(j, v->items[i]);
        }
        vram__json_object_end(j);
        break;
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    vram__json_doc *d;
    char err[160];
    if (vram__json_read((const char *)data, size, 5000, &d, err, sizeof(err)) != 0) {
        if (!err[0])
            abort();                /* a refusal always says why */
        return 0;
    }
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    write_back(&j, vram__json_root(d));
    vram__json_doc *again;
    if (!b.failed && vram__json_read(b.data, b.len, 0, &again, err, sizeof(err)) != 0)
        abort();                    /* what we accept, we can write and read back */
    if (!b.failed)
        vram__json_doc_free(again);
    vram__buf_free(&b);
    vram__json_doc_free(d);
    return 0;
}
