/* SPDX-License-Identifier: MIT */
/*
 * core/json_read.c - a strict, bounded JSON reader for what comes in from
 * outside: socket requests, files, the daemon's stored jobs.
 *
 * RFC 8259 and nothing more: no comments, no trailing commas, no NaN, UTF-8
 * checked, \u escapes (with surrogate pairs) decoded.  Limits on depth and
 * size make a hostile input cost a bounded amount; the errors say where
 * ("at byte 17: expected ':' after an object key").  Numbers keep their
 * text so byte counts up to 2^64-1 are read exactly.  Every value lives in
 * one arena freed at once.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"

#define MAX_DEPTH 32

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

struct vram__json_doc {
    chunk *chunks;
    vram__jv *root;
};

typedef struct reader {
    const char *s, *end, *start;
    vram__json_doc *doc;
    int depth;
    size_t nodes, max_nodes;
    char *err;
    size_t errcap;
} reader;

static void *arena_alloc(vram__json_doc *d, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    chunk *c = d->chunks;
    if (!c || c->used + n > c->cap) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof(chunk) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static int fail(reader *r, const char *what)
{
    snprintf(r->err, r->errcap, "at byte %zu: %s", (size_t)(r->s - r->start), what);
    return VRAM_EPARSE;
}

static void skip_space(reader *r)
{
    while (r->s < r->end && (*r->s == ' ' || *r->s == '\t' || *r->s == '\n' || *r->s == '\r'))
        r->s++;
}

static vram__jv *new_value(reader *r, int kind)
{
    if (++r->nodes > r->max_nodes)
        return NULL;
    vram__jv *v = arena_alloc(r->doc, sizeof(*v));
    if (v) {
        memset(v, 0, sizeof(*v));
        v->kind = kind;
    }
    return v;
}

static int parse_value(reader *r, vram__jv **out);

/* ---- strings ------------------------------------------------------------------- */

static int hex4(reader *r, unsigned *out)
{
    if (r->end - r->s < 4)
        return fail(r, "a \\u escape needs four hex digits");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *r->s++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail(r, "a \\u escape needs four hex digits");
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int parse_string(reader *r, char **out, size_t *len_out)
{
    r->s++;                         /* the opening quote */
    /* The decoded text is never longer than the source. */
    const char *close = r->s;
    while (close < r->end && *close != '"')
        close += *close == '\\' && close + 1 < r->end ? 2 : 1;
    if (close >= r->end)
        return fail(r, "unterminated string");
    char *o = arena_alloc(r->doc, (size_t)(close - r->s) + 1);
    if (!o)
        return VRAM_ENOMEM;
    size_t n = 0;
    while (r->s < close) {
        unsigned char c = (unsigned char)*r->s;
        if (c < 0x20)
            return fail(r, "control character in a string");
        if (c != '\\') {
            size_t k = vram__utf8_len((const unsigned char *)r->s, (size_t)(close - r->s));
            if (!k)
                return fail(r, "invalid UTF-8 in a string");
            memcpy(o + n, r->s, k);
            n += k;
            r->s += k;
            continue;
        }
        r->s++;
        char e = *r->s++;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            int rc = hex4(r, &cp);
            if (rc)
                return rc;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(r, "a lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (r->end - r->s < 6 || r->s[0] != '\\' || r->s[1] != 'u')
                    return fail(r, "a high surrogate without its low half");
                r->s += 2;
                if ((rc = hex4(r, &lo)))
                    return rc;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(r, "a high surrogate without its low half");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0)
                return fail(r, "\\u0000 is not accepted in strings");
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            return fail(r, "unknown escape in a string");
        }
    }
    o[n] = '\0';
    r->s = close + 1;
    *out = o;
    *len_out = n;
    return 0;
}

/* ---- numbers, words ------------------------------------------------------------- */

static int parse_number(reader *r, vram__jv *v)
{
    const char *p = r->s;
    if (p < r->end && *p == '-')
        p++;
    if (p >= r->end || !isdigit((unsigned char)*p))
        return fail(r, "expected a value");
    if (*p == '0' && p + 1 < r->end && isdigit((unsigned char)p[1]))
        return fail(r, "numbers do not start with 0");
    while (p < r->end && isdigit((unsigned char)*p))
        p++;
    if (p < r->end && *p == '.') {
        p++;
        if (p >= r->end || !isdigit((unsigned char)*p))
            return fail(r, "a digit must follow the decimal point");
        while (p < r->end && isdigit((unsigned char)*p))
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || !isdigit((unsigned char)*p))
            return fail(r, "a digit must follow the exponent");
        while (p < r->end && isdigit((unsigned char)*p))
            p++;
    }
    size_t n = (size_t)(p - r->s);
    if (n > 64)
        return fail(r, "number too long");
    char *text = arena_alloc(r->doc, n + 1);
    if (!text)
        return VRAM_ENOMEM;
    memcpy(text, r->s, n);
    text[n] = '\0';
    v->str = text;
    v->len = n;
    v->num = strtod(text, NULL);
    if (!isfinite(v->num))
        return fail(r, "number out of range");
    r->s = p;
    return 0;
}

static int parse_word(reader *r, vram__jv **out)
{
    static const struct { const char *w; int kind; bool b; } words[] = {
        { "true", VRAM__JV_BOOL, true }, { "false", VRAM__JV_BOOL, false }, { "null", VRAM__JV_NULL, false },
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i].w);
        if ((size_t)(r->end - r->s) >= n && !memcmp(r->s, words[i].w, n)) {
            vram__jv *v = new_value(r, words[i].kind);
            if (!v)
                return fail(r, "document too large");
            v->b = words[i].b;
            r->s += n;
            *out = v;
            return 0;
        }
    }
    vram__jv *v = new_value(r, VRAM__JV_NUMBER);
    if (!v)
        return fail(r, "document too large");
    *out = v;
    return parse_number(r, v);
}

/* ---- containers --------------------------------------------------------------------- */

/* Children are gathered on a singly linked list, then laid out in an array. */
typedef struct link {
    struct link *next;
    char *key;
    size_t key_len;
    vram__jv *val;
} link;

/* Whether two keys of one object are the same: a hash set of the keys, so
 * the check is linear in the keys (a 64 KiB request of 8,000 distinct keys
 * cost 0.75 s of the daemon's loop when each was compared with all before
 * it).  *dup is the repeated key. */
static int has_duplicate(link *head, size_t n, const char **dup)
{
    *dup = NULL;
    if (n < 2)
        return 0;
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    const link **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return VRAM_ENOMEM;
    for (const link *l = head; l && !*dup; l = l->next) {
        uint64_t h = 1469598103934665603ull;        /* FNV-1a */
        for (size_t i = 0; i < l->key_len; i++)
            h = (h ^ (unsigned char)l->key[i]) * 1099511628211ull;
        for (size_t at = (size_t)h & (cap - 1);; at = (at + 1) & (cap - 1)) {
            if (!slots[at]) {
                slots[at] = l;
                break;
            }
            if (slots[at]->key_len == l->key_len && !memcmp(slots[at]->key, l->key, l->key_len)) {
                *dup = l->key;
                break;
            }
        }
    }
    free(slots);
    return 0;
}

static int finish(reader *r, vram__jv *v, link *head, size_t n)
{
    if (v->kind == VRAM__JV_OBJECT) {
        const char *dup;
        if (has_duplicate(head, n, &dup))
            return VRAM_ENOMEM;
        if (dup)
            return fail(r, "a key appears twice in an object");
    }
    v->n = n;
    v->items = arena_alloc(r->doc, (n ? n : 1) * sizeof(*v->items));
    v->keys = v->kind == VRAM__JV_OBJECT ? arena_alloc(r->doc, (n ? n : 1) * sizeof(*v->keys)) : NULL;
    if (!v->items || (v->kind == VRAM__JV_OBJECT && !v->keys))
        return VRAM_ENOMEM;
    size_t i = n;
    for (link *l = head; l; l = l->next) {
        i--;
        v->items[i] = l->val;
        if (v->keys)
            v->keys[i] = l->key;
    }
    return 0;
}

static int parse_container(reader *r, vram__jv **out, bool object)
{
    if (++r->depth > MAX_DEPTH)
        return fail(r, "nested too deeply");
    vram__jv *v = new_value(r, object ? VRAM__JV_OBJECT : VRAM__JV_ARRAY);
    if (!v)
        return fail(r, "document too large");
    r->s++;
    link *head = NULL;
    size_t n = 0;
    skip_space(r);
    char close = object ? '}' : ']';
    if (r->s < r->end && *r->s == close) {
        r->s++;
        r->depth--;
        *out = v;
        return finish(r, v, NULL, 0);
    }
    for (;;) {
        link *l = arena_alloc(r->doc, sizeof(*l));
        if (!l)
            return VRAM_ENOMEM;
        memset(l, 0, sizeof(*l));
        int rc;
        skip_space(r);
        if (object) {
            if (r->s >= r->end || *r->s != '"')
                return fail(r, "expected a string as an object key");
            if ((rc = parse_string(r, &l->key, &l->key_len)))
                return rc;
            skip_space(r);
            if (r->s >= r->end || *r->s != ':')
                return fail(r, "expected ':' after an object key");
            r->s++;
        }
        if ((rc = parse_value(r, &l->val)))
            return rc;
        l->next = head;
        head = l;
        n++;
        skip_space(r);
        if (r->s < r->end && *r->s == ',') {
            r->s++;
            continue;
        }
        if (r->s < r->end && *r->s == close) {
            r->s++;
            break;
        }
        return fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    r->depth--;
    *out = v;
    return finish(r, v, head, n);
}

static int parse_value(reader *r, vram__jv **out)
{
    skip_space(r);
    if (r->s >= r->end)
        return fail(r, "unexpected end of input");
    switch (*r->s) {
    case '{':
        return parse_container(r, out, true);
    case '[':
        return parse_container(r, out, false);
    case '"': {
        vram__jv *v = new_value(r, VRAM__JV_STRING);
        if (!v)
            return fail(r, "document too large");
        *out = v;
        return parse_string(r, &v->str, &v->len);
    }
    default:
        return parse_word(r, out);
    }
}

int vram__json_read(const char *text, size_t len, size_t max_nodes, vram__json_doc **doc_out,
                    char *err, size_t errcap)
{
    char scratch[8];
    if (!err || !errcap) {
        err = scratch;
        errcap = sizeof(scratch);
    }
    err[0] = '\0';
    *doc_out = NULL;
    vram__json_doc *d = calloc(1, sizeof(*d));
    if (!d)
        return VRAM_ENOMEM;
    reader r = { text, text + len, text, d, 0, 0, max_nodes ? max_nodes : 100000, err, errcap };
    int rc = text ? parse_value(&r, &d->root) : fail(&r, "no input");
    if (!rc) {
        skip_space(&r);
        if (r.s != r.end)
            rc = fail(&r, "text after the JSON value");
    }
    if (rc == VRAM_ENOMEM)
        snprintf(err, errcap, "out of host memory");
    if (rc) {
        vram__json_doc_free(d);
        return rc;
    }
    *doc_out = d;
    return 0;
}

void vram__json_doc_free(vram__json_doc *d)
{
    if (!d)
        return;
    for (chunk *c = d->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(d);
}

const vram__jv *vram__json_root(const vram__json_doc *d)
{
    return d ? d->root : NULL;
}

const vram__jv *vram__jv_get(const vram__jv *obj, const char *key)
{
    if (!obj || obj->kind != VRAM__JV_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key))
            return obj->items[i];
    return NULL;
}

const char *vram__jv_str(const vram__jv *v)
{
    return v && v->kind == VRAM__JV_STRING ? v->str : NULL;
}

bool vram__jv_uint(const vram__jv *v, uint64_t *out)
{
    if (!v || v->kind != VRAM__JV_NUMBER || v->str[0] == '-' || strpbrk(v->str, ".eE"))
        return false;
    errno = 0;
    char *end;
    unsigned long long u = strtoull(v->str, &end, 10);
    if (errno || *end)
        return false;
    *out = u;
    return true;
}
