/*
 * runner/ladder.c - the ladder of cheaper settings a job climbs down after
 * an out-of-memory, and the {key} templates its command line is made from.
 *
 * "batch=8 res=720p vram=6GiB; batch=1; enhancer=none" is three rungs; each
 * keeps the settings of the one before and overrides what it names.  A
 * ladder must get cheaper: where budgets are given, each is smaller than the
 * last.
 */
#include <ctype.h>
#include <string.h>

#include "core/core.h"

static bool key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* Parses one "k=v k=v" rung into r. */
static int parse_rung(char *text, size_t number, vram_ladder_rung *r)
{
    memset(r, 0, sizeof(*r));
    char *save = NULL;
    for (char *pair = strtok_r(text, " \t", &save); pair; pair = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq || eq == pair || !eq[1])
            return vram__fail(VRAM_EINVAL, "ladder rung %zu: '%s' is not key=value", number, pair);
        *eq = '\0';
        for (const char *k = pair; *k; k++)
            if (!key_char(*k))
                return vram__fail(VRAM_EINVAL, "ladder rung %zu: key '%s' may hold only letters, digits, "
                                  "'_', '-' and '.'", number, pair);
        const char *value = eq + 1;
        if (!strcmp(pair, "vram")) {
            if (r->vram_bytes)
                return vram__fail(VRAM_EINVAL, "ladder rung %zu: vram given twice", number);
            int rc = vram_size_parse(value, &r->vram_bytes);
            if (rc) {
                char why[400];
                vram__strlcpy(why, vram_last_error(), sizeof(why));
                return vram__fail(rc, "ladder rung %zu: vram=%s: %s", number, value, why);
            }
            if (r->vram_bytes == 0)
                return vram__fail(VRAM_EINVAL, "ladder rung %zu: vram=0 fits nothing", number);
            continue;
        }
        for (size_t i = 0; i < r->nkv; i++)
            if (!strcmp(r->kv[i].key, pair))
                return vram__fail(VRAM_EINVAL, "ladder rung %zu: '%s' given twice", number, pair);
        if (r->nkv == VRAM_RUNG_MAX_KEYS)
            return vram__fail(VRAM_ERANGE, "ladder rung %zu: at most %d settings", number,
                              VRAM_RUNG_MAX_KEYS);
        if (strlen(pair) >= sizeof(r->kv[0].key) || strlen(value) >= sizeof(r->kv[0].value))
            return vram__fail(VRAM_ERANGE, "ladder rung %zu: '%s=%s' is too long", number, pair, value);
        vram__strlcpy(r->kv[r->nkv].key, pair, sizeof(r->kv[0].key));
        vram__strlcpy(r->kv[r->nkv].value, value, sizeof(r->kv[0].value));
        r->nkv++;
    }
    if (r->nkv == 0 && r->vram_bytes == 0)
        return vram__fail(VRAM_EINVAL, "ladder rung %zu is empty", number);
    return 0;
}

/* Budgets, where given, shrink from rung to rung. */
static int check_cheaper(const vram_ladder *l)
{
    size_t with = 0;
    for (size_t i = 0; i < l->nrungs; i++)
        with += l->rungs[i].vram_bytes != 0;
    if (with == 0)
        return 0;
    if (with != l->nrungs)
        return vram__fail(VRAM_EINVAL, "ladder: give vram=SIZE on every rung or on none, so that "
                          "each can be checked to be cheaper");
    for (size_t i = 1; i < l->nrungs; i++)
        if (l->rungs[i].vram_bytes >= l->rungs[i - 1].vram_bytes) {
            char a[32], b[32];
            vram_size_format(l->rungs[i - 1].vram_bytes, a, sizeof(a));
            vram_size_format(l->rungs[i].vram_bytes, b, sizeof(b));
            return vram__fail(VRAM_EINVAL, "ladder does not get cheaper: rung %zu needs %s, rung %zu "
                              "needs %s; each rung must need less than the one before", i, a, i + 1, b);
        }
    return 0;
}

int vram_ladder_parse(const char *text, vram_ladder *out)
{
    if (!text || !out)
        return vram__fail(VRAM_EINVAL, "vram_ladder_parse: NULL argument");
    memset(out, 0, sizeof(*out));
    char copy[8192];
    if (strlen(text) >= sizeof(copy))
        return vram__fail(VRAM_ERANGE, "ladder is too long (%zu bytes)", strlen(text));
    vram__strlcpy(copy, text, sizeof(copy));
    int rc = 0;
    char *start = copy;
    for (char *semi; start && !rc; start = semi ? semi + 1 : NULL) {
        semi = strchr(start, ';');
        if (semi)
            *semi = '\0';
        if (*vram__trim(start) == '\0' && !semi && out->nrungs > 0)
            break;                  /* a trailing ';' */
        if (out->nrungs == VRAM_LADDER_MAX_RUNGS)
            return vram__fail(VRAM_ERANGE, "ladder has more than %d rungs", VRAM_LADDER_MAX_RUNGS);
        rc = parse_rung(start, out->nrungs + 1, &out->rungs[out->nrungs]);
        if (!rc)
            out->nrungs++;
    }
    if (!rc)
        rc = check_cheaper(out);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int vram_ladder_first_budget(const vram_ladder *l, uint64_t job_bytes, uint64_t *out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_ladder_first_budget: NULL output");
    uint64_t rung = l && l->nrungs ? l->rungs[0].vram_bytes : 0;
    *out = job_bytes ? job_bytes : rung;
    if (job_bytes && rung && job_bytes != rung) {
        char a[32], b[32];
        vram_size_format(job_bytes, a, sizeof(a));
        vram_size_format(rung, b, sizeof(b));
        *out = 0;
        return vram__fail(VRAM_EINVAL, "the job's budget (%s) and its ladder's first rung (vram=%s) "
                          "disagree: the first rung is the first attempt, so give its budget once", a, b);
    }
    return 0;
}

const char *vram_ladder_get(const vram_ladder *l, size_t rung, const char *key)
{
    if (!l || !key || rung >= l->nrungs)
        return NULL;
    for (size_t r = rung + 1; r-- > 0;)
        for (size_t i = 0; i < l->rungs[r].nkv; i++)
            if (!strcmp(l->rungs[r].kv[i].key, key))
                return l->rungs[r].kv[i].value;
    return NULL;
}

/* ---- templates ------------------------------------------------------------ */

static const char *lookup(const vram_kv *kv, size_t n, const char *key, size_t len)
{
    /* Later pairs win, so callers can lay rung values over defaults. */
    for (size_t i = n; i-- > 0;)
        if (strlen(kv[i].key) == len && !strncmp(kv[i].key, key, len))
            return kv[i].value;
    return NULL;
}

static int unknown_key(const char *key, size_t len, const vram_kv *kv, size_t n)
{
    vram__buf known;
    vram__buf_init(&known);
    for (size_t i = 0; i < n; i++)
        vram__buf_printf(&known, "%s{%s}", i ? ", " : "", kv[i].key);
    int rc = vram__fail(VRAM_EINVAL, "'{%.*s}' in the command has no value (known: %s; write {{ for a "
                        "literal brace)", (int)len, key, known.len ? known.data : "none");
    vram__buf_free(&known);
    return rc;
}

int vram_template_expand(const char *text, const vram_kv *kv, size_t n, char **out)
{
    if (!text || !out || (n && !kv))
        return vram__fail(VRAM_EINVAL, "vram_template_expand: NULL argument");
    *out = NULL;
    vram__buf b;
    vram__buf_init(&b);
    for (const char *p = text; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            vram__buf_put(&b, p, 1);
            p += 2;
            continue;
        }
        const char *close = p[0] == '{' ? strchr(p, '}') : NULL;
        size_t len = close ? (size_t)(close - p - 1) : 0;
        bool is_key = len > 0;
        for (size_t i = 0; is_key && i < len; i++)
            is_key = key_char(p[1 + i]);
        if (!is_key) {
            vram__buf_put(&b, p, 1);
            p++;
            continue;
        }
        const char *value = lookup(kv, n, p + 1, len);
        if (!value) {
            vram__buf_free(&b);
            return unknown_key(p + 1, len, kv, n);
        }
        vram__buf_puts(&b, value);
        p = close + 1;
    }
    int rc;
    *out = vram__buf_take(&b, &rc);
    return rc;
}
