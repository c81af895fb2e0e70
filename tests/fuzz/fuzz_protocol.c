/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_protocol.c - libFuzzer target: the daemon's request
 * parser must never crash, leak or read out of bounds, must say why it
 * refuses, and every request it accepts must be internally whole.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/protocol.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    vram__request r;
    char err[256];
    int rc = vram__request_parse((const char *)data, size, &r, err, sizeof(err));
    if (rc) {
        if (!err[0] || r.doc)
            abort();
        vram__buf b;
        vram__buf_init(&b);
        vram__reply_error(&b, r.id, rc, err);   /* the error reply must be writable */
        vram__buf_free(&b);
        return 0;
    }
    if (r.op < 0 || r.op >= VRAM__OP_COUNT)
        abort();
    for (size_t i = 0; i < r.argc; i++)
        if (!r.argv[i])
            abort();
    if (r.op == VRAM__OP_SUBMIT && (!r.argc || !*r.argv[0] || (!r.bytes && !r.model)))
        abort();
    vram__request_free(&r);
    return 0;
}
