/* SPDX-License-Identifier: MIT */
/*
 * core/json_read.h - reading JSON from outside (see json_read.c).
 */
#ifndef VRAM_CORE_JSON_READ_H
#define VRAM_CORE_JSON_READ_H

#include "core/core.h"

enum { VRAM__JV_NULL, VRAM__JV_BOOL, VRAM__JV_NUMBER, VRAM__JV_STRING, VRAM__JV_ARRAY, VRAM__JV_OBJECT };

typedef struct vram__jv vram__jv;
struct vram__jv {
    int kind;
    bool b;                         /* BOOL */
    double num;                     /* NUMBER (approximate; str is exact) */
    char *str;                      /* STRING (decoded, NUL-terminated) or NUMBER text */
    size_t len;
    size_t n;                       /* ARRAY / OBJECT members */
    vram__jv **items;
    char **keys;                    /* OBJECT only */
};

typedef struct vram__json_doc vram__json_doc;

/* Parses len bytes of text.  max_nodes bounds the values (0: 100000);
 * nesting is bounded at 32.  On failure returns VRAM_EPARSE (or
 * VRAM_ENOMEM) with "at byte N: what" in err. */
int vram__json_read(const char *text, size_t len, size_t max_nodes, vram__json_doc **doc_out,
                    char *err, size_t errcap);
void vram__json_doc_free(vram__json_doc *d);
const vram__jv *vram__json_root(const vram__json_doc *d);

/* Member `key` of an object, or NULL (also when obj is not an object). */
const vram__jv *vram__jv_get(const vram__jv *obj, const char *key);
/* The string, or NULL when v is not a string. */
const char *vram__jv_str(const vram__jv *v);
/* A whole non-negative number up to 2^64-1, exactly. */
bool vram__jv_uint(const vram__jv *v, uint64_t *out);

#endif
