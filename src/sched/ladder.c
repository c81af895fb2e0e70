/* SPDX-License-Identifier: MIT */
/*
 * sched/ladder.c - the one ladder type: the rungs a job or a task climbs
 * down after an out-of-memory (or when a rung waits too long), and the
 * {key} templates a job's command line is made from.
 *
 * A job's ladder is text ("batch=8 res=720p vram=6GiB; batch=1;
 * enhancer=none" is three rungs, each keeping the settings of the one
 * before and overriding what it names) or a model profile's [ladder]
 * section; a task's is an array of vram_rung (budget and callback), which
 * the pool turns into the same vram_ladder.  Whatever the source, a rung
 * never needs more than the rung before it.  A ladder lives on the heap,
 * a few hundred bytes, never on a stack by value.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"
#include "sched/sched.h"
#include "sched/template.h"

typedef struct lrung {
    uint64_t bytes;                 /* 0: not given */
    vram_task_fn fn;                /* a task's rung; NULL in a job's ladder */
    size_t kv_at, nkv;              /* its own settings, in ladder->kv */
} lrung;

struct vram_ladder {
    size_t n, cap;
    vram_kv *kv;                    /* every rung's own settings, in order */
    size_t nkv, kv_cap;
    lrung rung[];                   /* cap of them: a task's 1 + its rungs, or
                                       VRAM_LADDER_MAX_RUNGS */
};

static bool key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static vram_ladder *ladder_new(size_t cap)
{
    vram_ladder *l = calloc(1, sizeof(vram_ladder) + cap * sizeof(lrung));
    if (l)
        l->cap = cap;
    return l;
}

void vram_ladder_free(vram_ladder *l)
{
    if (!l)
        return;
    free(l->kv);
    free(l);
}

static int kv_push(vram_ladder *l, const char *key, const char *value)
{
    if (l->nkv == l->kv_cap) {
        size_t cap = l->kv_cap ? l->kv_cap * 2 : 8;
        vram_kv *p = realloc(l->kv, cap * sizeof(*p));
        if (!p)
            return vram__fail(VRAM_ENOMEM, "out of host memory reading a ladder");
        l->kv = p;
        l->kv_cap = cap;
    }
    vram__strlcpy(l->kv[l->nkv].key, key, sizeof(l->kv[0].key));
    vram__strlcpy(l->kv[l->nkv].value, value, sizeof(l->kv[0].value));
    l->nkv++;
    return 0;
}

/* Parses one "k=v k=v" rung into the next rung of l. */
static int parse_rung(vram_ladder *l, char *text, size_t number)
{
    lrung *r = &l->rung[l->n];
    memset(r, 0, sizeof(*r));
    r->kv_at = l->nkv;
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
            if (r->bytes)
                return vram__fail(VRAM_EINVAL, "ladder rung %zu: vram given twice", number);
            int rc = vram_size_parse(value, &r->bytes);
            if (rc) {
                char why[400];
                vram__strlcpy(why, vram_last_error(), sizeof(why));
                return vram__fail(rc, "ladder rung %zu: vram=%s: %s", number, value, why);
            }
            if (r->bytes == 0)
                return vram__fail(VRAM_EINVAL, "ladder rung %zu: vram=0 fits nothing", number);
            continue;
        }
        for (size_t i = 0; i < r->nkv; i++)
            if (!strcmp(l->kv[r->kv_at + i].key, pair))
                return vram__fail(VRAM_EINVAL, "ladder rung %zu: '%s' given twice", number, pair);
        if (r->nkv == VRAM_RUNG_MAX_KEYS)
            return vram__fail(VRAM_ERANGE, "ladder rung %zu: at most %d settings", number,
                              VRAM_RUNG_MAX_KEYS);
        if (strlen(pair) >= sizeof(l->kv[0].key) || strlen(value) >= sizeof(l->kv[0].value))
            return vram__fail(VRAM_ERANGE, "ladder rung %zu: '%s=%s' is too long", number, pair, value);
        int rc = kv_push(l, pair, value);
        if (rc)
            return rc;
        r->nkv++;
    }
    if (r->nkv == 0 && r->bytes == 0)
        return vram__fail(VRAM_EINVAL, "ladder rung %zu is empty", number);
    l->n++;
    return 0;
}

/* The rule every kind of ladder obeys: a rung never needs more than the one
 * before.  A job's text ladder is held to more: budgets, where given, are
 * on every rung and shrink strictly (a rung that asks for the same memory
 * is no rung), so that each can be checked. */
int vram__ladder_check_cheaper(const vram_ladder *l, bool strict, size_t base)
{
    size_t with = 0;
    for (size_t i = 0; i < l->n; i++)
        with += l->rung[i].bytes != 0;
    if (with == 0)
        return 0;
    if (strict && with != l->n)
        return vram__fail(VRAM_EINVAL, "ladder: give vram=SIZE on every rung or on none, so that "
                          "each can be checked to be cheaper");
    uint64_t before = 0;
    size_t at = 0;
    for (size_t i = 0; i < l->n; i++) {
        uint64_t b = l->rung[i].bytes;
        if (!b)
            continue;
        if (before && (b > before || (strict && b == before))) {
            char x[32], y[32];
            vram_size_format(before, x, sizeof(x));
            vram_size_format(b, y, sizeof(y));
            return vram__fail(VRAM_EINVAL, "ladder does not get cheaper: rung %zu needs %s, rung %zu "
                              "needs %s; rungs must get cheaper (each needs %s the one before)", at + base, x,
                              i + base, y, strict ? "less than" : "at most");
        }
        before = b;
        at = i;
    }
    return 0;
}

int vram_ladder_parse(const char *text, vram_ladder **out)
{
    if (out)
        *out = NULL;
    if (!text || !out)
        return vram__fail(VRAM_EINVAL, "vram_ladder_parse: NULL argument");
    size_t len = strlen(text);
    if (len >= 8192)
        return vram__fail(VRAM_ERANGE, "ladder is too long (%zu bytes)", len);
    char *copy = malloc(len + 1);
    vram_ladder *l = ladder_new(VRAM_LADDER_MAX_RUNGS);
    if (!copy || !l) {
        free(copy);
        free(l);
        return vram__fail(VRAM_ENOMEM, "out of host memory reading a ladder");
    }
    memcpy(copy, text, len + 1);
    int rc = 0;
    char *start = copy;
    for (char *semi; start && !rc; start = semi ? semi + 1 : NULL) {
        semi = strchr(start, ';');
        if (semi)
            *semi = '\0';
        if (*vram__trim(start) == '\0' && !semi && l->n > 0)
            break;                  /* a trailing ';' */
        if (l->n == VRAM_LADDER_MAX_RUNGS)
            rc = vram__fail(VRAM_ERANGE, "ladder has more than %d rungs", VRAM_LADDER_MAX_RUNGS);
        else
            rc = parse_rung(l, start, l->n + 1);
    }
    free(copy);
    if (!rc)
        rc = vram__ladder_check_cheaper(l, true, 1);
    if (rc) {
        vram_ladder_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int vram_ladder_from_profile(const vram_profile *p, vram_ladder **out)
{
    if (out)
        *out = NULL;
    if (!p || !out)
        return vram__fail(VRAM_EINVAL, "vram_ladder_from_profile: NULL argument");
    vram_ladder *l = ladder_new(VRAM_LADDER_MAX_RUNGS);
    if (!l)
        return vram__fail(VRAM_ENOMEM, "out of host memory reading a ladder");
    l->n = 1;                       /* rung 0: the plan as made */
    int rc = 0;
    size_t n = vram_profile_ladder_count(p);
    for (size_t i = 0; i < n && !rc; i++) {
        char text[1024];
        if (l->n == VRAM_LADDER_MAX_RUNGS)
            rc = vram__fail(VRAM_ERANGE, "the profile's ladder has more than %d rungs",
                            VRAM_LADDER_MAX_RUNGS - 1);
        else if ((size_t)vram_profile_ladder_rung(p, i, text, sizeof(text)) >= sizeof(text))
            rc = vram__fail(VRAM_ERANGE, "the profile's ladder rung %zu is too long", i + 1);
        else
            rc = parse_rung(l, text, i + 2);
    }
    if (rc) {
        vram_ladder_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int vram__ladder_from_task(uint64_t bytes, vram_task_fn fn, const vram_rung *rungs, size_t n,
                           vram_ladder **out)
{
    *out = NULL;
    if (n > VRAM_LADDER_MAX_RUNGS)
        return vram__fail(VRAM_ERANGE, "a ladder of %zu rungs: at most %d", n, VRAM_LADDER_MAX_RUNGS);
    if (n && !rungs)
        return vram__fail(VRAM_EINVAL, "%zu ladder rungs but no ladder", n);
    for (size_t i = 0; i < n; i++) {
        if (!rungs[i].fn)
            return vram__fail(VRAM_EINVAL, "ladder rung %zu has no callback", i + 1);
        if (!rungs[i].bytes)
            return vram__fail(VRAM_EINVAL, "ladder rung %zu has an estimate of 0 bytes (a rung that "
                              "needs no device memory is the fallback)", i + 1);
    }
    vram_ladder *l = ladder_new(n + 1);
    if (!l)
        return vram__fail(VRAM_ENOMEM, "out of host memory for a task's ladder");
    l->rung[0] = (lrung){ .bytes = bytes, .fn = fn };
    for (size_t i = 0; i < n; i++)
        l->rung[i + 1] = (lrung){ .bytes = rungs[i].bytes, .fn = rungs[i].fn };
    l->n = n + 1;
    int rc = vram__ladder_check_cheaper(l, false, 0);   /* a task's rung k is its rung k */
    if (rc) {
        vram_ladder_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

size_t vram_ladder_count(const vram_ladder *l)
{
    return l ? l->n : 0;
}

int vram_ladder_rung(const vram_ladder *l, size_t i, vram_rung *out)
{
    if (!l || !out || i >= l->n)
        return VRAM_ENOENT;
    out->bytes = l->rung[i].bytes;
    out->fn = l->rung[i].fn;
    return 0;
}

int vram_ladder_setting(const vram_ladder *l, size_t i, size_t j, const char **key_out,
                        const char **value_out)
{
    if (!l || i >= l->n || j >= l->rung[i].nkv)
        return VRAM_ENOENT;
    const vram_kv *kv = &l->kv[l->rung[i].kv_at + j];
    if (key_out)
        *key_out = kv->key;
    if (value_out)
        *value_out = kv->value;
    return 0;
}

int vram_ladder_first_budget(const vram_ladder *l, uint64_t job_bytes, uint64_t *out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_ladder_first_budget: NULL output");
    uint64_t rung = l && l->n ? l->rung[0].bytes : 0;
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

int vram_ladder_check_text(const char *text, uint64_t job_bytes, uint64_t *first_out)
{
    if (first_out)
        *first_out = job_bytes;
    if (!text || !*text)
        return 0;
    vram_ladder *l;
    int rc = vram_ladder_parse(text, &l);
    uint64_t first = 0;
    if (!rc)
        rc = vram_ladder_first_budget(l, job_bytes, &first);
    vram_ladder_free(l);
    if (!rc && first_out)
        *first_out = first;
    return rc;
}

const char *vram_ladder_get(const vram_ladder *l, size_t rung, const char *key)
{
    if (!l || !key || rung >= l->n)
        return NULL;
    for (size_t r = rung + 1; r-- > 0;)
        for (size_t i = 0; i < l->rung[r].nkv; i++)
            if (!strcmp(l->kv[l->rung[r].kv_at + i].key, key))
                return l->kv[l->rung[r].kv_at + i].value;
    return NULL;
}

/* Whether some argument of argv holds "{key}" as a template (not "{{key}}"). */
static bool command_uses(char *const *argv, const char *key)
{
    size_t len = strlen(key);
    vram__template_token t;
    for (size_t a = 0; argv && argv[a]; a++)
        for (const char *p = argv[a]; *p;) {
            p = vram__template_next(p, &t);
            if (t.key && t.len == len && !strncmp(t.text, key, len))
                return true;
        }
    return false;
}

int vram_ladder_check_command(const vram_ladder *l, char *const *argv, const vram_profile *profile)
{
    if (!l)
        return 0;
    for (size_t i = 1; i < l->n; i++) {
        const lrung *r = &l->rung[i];
        bool changes = r->bytes && r->bytes != l->rung[i - 1].bytes;
        vram__buf unused;
        vram__buf_init(&unused);
        const char *first_unused = NULL;
        for (size_t j = 0; j < r->nkv && !changes; j++) {
            const vram_kv *kv = &l->kv[r->kv_at + j];
            const char *was = vram_ladder_get(l, i - 1, kv->key);
            if (was && !strcmp(was, kv->value))
                continue;           /* the same value again changes nothing */
            /* with {args}, a planned key reaches the command only through [args] */
            bool planned = profile && plan__key_find(kv->key) >= 0 &&
                           (!command_uses(argv, "args") || plan__args_use(profile, kv->key));
            if (command_uses(argv, kv->key) || planned)
                changes = true;
            else {
                vram__buf_printf(&unused, "%s'%s'", unused.len ? ", " : "", kv->key);
                first_unused = first_unused ? first_unused : kv->key;
            }
        }
        if (!changes) {
            int rc = unused.len
                ? vram__fail(VRAM_EINVAL, "ladder rung %zu would run the same command again: the "
                             "command never uses %s (write {%s} where it goes)%s", i + 1, unused.data,
                             first_unused, profile ? ", and the model does not plan with it" : "")
                : vram__fail(VRAM_EINVAL, "ladder rung %zu would run the same command again: it "
                             "changes no setting and no budget", i + 1);
            vram__buf_free(&unused);
            return rc;
        }
        vram__buf_free(&unused);
    }
    return 0;
}

/* ---- templates ------------------------------------------------------------ */

const char *vram__template_next(const char *p, vram__template_token *out)
{
    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
        *out = (vram__template_token){ false, p, 1 };
        return p + 2;
    }
    const char *close = p[0] == '{' ? strchr(p, '}') : NULL;
    size_t len = close ? (size_t)(close - p - 1) : 0;
    bool is_key = len > 0;
    for (size_t i = 0; is_key && i < len; i++)
        is_key = key_char(p[1 + i]);
    if (!is_key) {
        *out = (vram__template_token){ false, p, 1 };
        return p + 1;
    }
    *out = (vram__template_token){ true, p + 1, len };
    return close + 1;
}

int vram__template_lookup(const vram_kv *kv, size_t n, const char *key, size_t len)
{
    /* Later pairs win, so callers can lay rung values over defaults. */
    for (size_t i = n; i-- > 0;)
        if (strlen(kv[i].key) == len && !strncmp(kv[i].key, key, len))
            return (int)i;
    return -1;
}

int vram__template_unknown(const char *key, size_t len, const vram_kv *kv, size_t n)
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

int vram__template_args_need_model(void)
{
    return vram__fail(VRAM_EINVAL, "{args} in the command needs a model (--model NAME): it stands for the "
                      "plan's settings as the pipeline's own flags, from the profile's [args]");
}

/* The names a command's {key}s may take their values from, in a hash set:
 * a check is linear in the command and the settings, however many of each
 * a request of 64 KiB holds. */
typedef struct known_keys {
    const char **slot;              /* NULL: empty; a power of two of them */
    size_t mask;
} known_keys;

static size_t key_hash(const char *key, size_t len)
{
    size_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h;
}

static const char **key_slot(const known_keys *k, const char *key, size_t len)
{
    size_t i = key_hash(key, len) & k->mask;
    while (k->slot[i] && (strlen(k->slot[i]) != len || strncmp(k->slot[i], key, len)))
        i = (i + 1) & k->mask;
    return &k->slot[i];
}

static int known_keys_make(known_keys *k, const char *const *keys, size_t nkeys, const vram_ladder *l)
{
    size_t nrung = l && l->n ? l->rung[0].nkv : 0, cap = 16;
    while (cap < 2 * (nkeys + nrung))
        cap *= 2;
    k->mask = cap - 1;
    if (!(k->slot = calloc(cap, sizeof(*k->slot))))
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    for (size_t i = 0; i < nkeys + nrung; i++) {
        const char *key = i < nkeys ? keys[i] : l->kv[l->rung[0].kv_at + (i - nkeys)].key;
        *key_slot(k, key, strlen(key)) = key;
    }
    return 0;
}

/* Whether key (len bytes) is a setting's, the first rung's, or (planned)
 * one of the keys every plan gives a value. */
static bool command_key_known(const known_keys *k, const char *key, size_t len, bool planned)
{
    if (*key_slot(k, key, len))
        return true;
    char name[32];
    if (!planned || len >= sizeof(name))
        return false;
    memcpy(name, key, len);
    name[len] = '\0';
    return plan__key_find(name) >= 0;
}

/* VRAM_EINVAL naming key, and the keys it could have been: the plan's, the
 * settings, the first rung's (as the expansion at the start names them). */
static int command_key_unknown(const char *key, size_t len, const char *const *keys, size_t nkeys,
                               const vram_ladder *l, bool planned)
{
    size_t nplan = planned ? PLAN_NKEYS : 0, nrung = l && l->n ? l->rung[0].nkv : 0;
    size_t n = nplan + nkeys + nrung;
    vram_kv *kv = calloc(n + 1, sizeof(*kv));
    if (!kv)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    for (size_t i = 0; i < nplan; i++)
        vram__strlcpy(kv[i].key, plan__key_name((int)i), sizeof(kv[i].key));
    for (size_t i = 0; i < nkeys; i++)
        vram__strlcpy(kv[nplan + i].key, keys[i], sizeof(kv[0].key));
    for (size_t i = 0; i < nrung; i++)
        kv[nplan + nkeys + i] = l->kv[l->rung[0].kv_at + i];
    int rc = vram__template_unknown(key, len, kv, n);
    free(kv);
    return rc;
}

int vram__template_check_command(char *const *argv, const char *const *keys, size_t nkeys,
                                 const vram_ladder *l, bool planned)
{
    known_keys k;
    int rc = known_keys_make(&k, keys, nkeys, l);
    vram__template_token t;
    for (size_t a = 0; !rc && argv && argv[a]; a++)
        for (const char *p = argv[a]; !rc && *p;) {
            p = vram__template_next(p, &t);
            if (!t.key)
                continue;
            bool args = t.len == 4 && !strncmp(t.text, "args", 4);
            if (args && !planned)
                rc = vram__template_args_need_model();
            else if (!args && !command_key_known(&k, t.text, t.len, planned))
                rc = command_key_unknown(t.text, t.len, keys, nkeys, l, planned);
        }
    free(k.slot);
    return rc;
}

int vram_template_expand(const char *text, const vram_kv *kv, size_t n, char **out)
{
    if (!text || !out || (n && !kv))
        return vram__fail(VRAM_EINVAL, "vram_template_expand: NULL argument");
    *out = NULL;
    vram__buf b;
    vram__buf_init(&b);
    vram__template_token t;
    for (const char *p = text; *p;) {
        p = vram__template_next(p, &t);
        if (!t.key) {
            vram__buf_put(&b, t.text, t.len);
            continue;
        }
        int k = vram__template_lookup(kv, n, t.text, t.len);
        if (k < 0) {
            vram__buf_free(&b);
            return vram__template_unknown(t.text, t.len, kv, n);
        }
        vram__buf_puts(&b, kv[k].value);
    }
    int rc;
    *out = vram__buf_take(&b, &rc);
    return rc;
}
