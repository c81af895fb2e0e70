/* SPDX-License-Identifier: MIT */
/*
 * plan/profile.c - reads model profiles: INI text parsed by inih (Debian's
 * libinih), checked section by section, every mistake reported as
 * "file:line: what is wrong".
 *
 * Owns the profile format (documented in the README); where the files are
 * found is library.c's.  inih splits lines into sections, keys and values; this file gives
 * them meaning.  It feeds inih through a reader callback so that it knows
 * the line of every key, the header line of every section (a missing field
 * is reported there), and lines too long for inih's buffer (refused rather
 * than split).  inih's settings are process globals: they are only read,
 * never changed.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

#define MAX_SEEN 512

enum section_kind {
    SEC_NONE, SEC_PROFILE, SEC_DEFAULTS, SEC_LATENT, SEC_OVERHEAD, SEC_TIME, SEC_COMPONENT,
    SEC_STAGE, SEC_TIER, SEC_LEVER, SEC_LADDER, SEC_CALIBRATION, SEC_ARGS
};

static const struct {
    const char *word;
    enum section_kind kind;
    bool named;                     /* [word NAME] */
} section_words[] = {
    { "profile", SEC_PROFILE, false }, { "defaults", SEC_DEFAULTS, false },
    { "latent", SEC_LATENT, false },   { "overhead", SEC_OVERHEAD, false },
    { "time", SEC_TIME, false },       { "component", SEC_COMPONENT, true },
    { "stage", SEC_STAGE, true },      { "tier", SEC_TIER, true },
    { "lever", SEC_LEVER, true },      { "ladder", SEC_LADDER, false },
    { "calibration", SEC_CALIBRATION, false }, { "args", SEC_ARGS, false },
};

/* The reader's state: where inih is in the text, and what it has seen. */
typedef struct reader {
    const char *path;
    const char *text;
    size_t len, pos;
    int line;                       /* of the line inih got last */
    int section_line;               /* of the last [section] header */
    int long_line;                  /* a line too long for inih, or 0 */
    bool continuation;              /* the last line was indented */

    vram_profile *p;
    enum section_kind kind;
    int index;                      /* component/stage/tier/lever being filled */
    char section[128];              /* as inih gave it */
    int open_line;                  /* header line of the open section */

    struct {
        char section[64], key[PLAN_NAME_MAX];
        int line;
    } seen[MAX_SEEN];
    int nseen;
    int header_line[SEC_ARGS + 1];   /* first header of each unnamed kind */
    char last_key[PLAN_NAME_MAX];

    /* Component keys resolved after the parse, once every stage is known. */
    char stages[PLAN_MAX_COMPONENTS][PLAN_TEXT_MAX];
    int stages_line[PLAN_MAX_COMPONENTS];
    double weights[PLAN_MAX_COMPONENTS];    /* checkpoint bytes, 0: params given */
    int weights_dtype[PLAN_MAX_COMPONENTS]; /* -1: the component's dtype */

    int rc;                         /* the first error */
    int rc_line;                    /* its line */
    char error[1024];
} reader;

/* ---- reporting ------------------------------------------------------------ */

static int fail_at(reader *r, int line, const char *fmt, ...) VRAM__PRINTF(3, 4);
static int fail_at(reader *r, int line, const char *fmt, ...)
{
    if (r->rc)
        return r->rc;
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(r->error, sizeof(r->error), "%s:%d: %s", r->path, line, what);
    r->rc = VRAM_EPARSE;
    r->rc_line = line;
    return r->rc;
}

/* Prefixes the library's last message (from a value parser) with file:line
 * and the key. */
static int fail_value(reader *r, const char *key)
{
    char why[768];
    vram__strlcpy(why, vram_last_error(), sizeof(why));
    return fail_at(r, r->line, "%s: %s", key, why);
}

/* ---- feeding inih --------------------------------------------------------- */

/* fgets over the text, counting lines.  A line that does not fit inih's
 * buffer ends the parse: inih would read its tail as a line of its own. */
static char *read_line(char *str, int num, void *stream)
{
    reader *r = stream;
    if (r->pos >= r->len || r->long_line || num < 4)
        return NULL;
    const char *start = r->text + r->pos;
    const char *nl = memchr(start, '\n', r->len - r->pos);
    size_t n = nl ? (size_t)(nl - start) + 1 : r->len - r->pos;
    r->line++;
    if (n > (size_t)num - 1) {
        r->long_line = r->line;
        return NULL;
    }
    memcpy(str, start, n);
    str[n] = '\0';
    r->pos += n;
    const char *s = str;
    while (*s == ' ' || *s == '\t')
        s++;
    r->continuation = s != str && *s && *s != '\n' && *s != '\r' && *s != '#' && *s != ';';
    if (*s == '[')
        r->section_line = r->line;
    return str;
}

/* ---- value parsers ----------------------------------------------------------- */

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false")) {
        *out = false;
        return true;
    }
    return false;
}

/* strtod held to the decimal grammar of sizes: digits, a point, an
 * exponent.  strtod alone also takes hex ("0x10"), "inf" and "nan"; those
 * leave *end at v, as no number does. */
static double decimal(const char *v, char **end)
{
    double d = strtod(v, end);
    if (strspn(v, "0123456789.eE+-") < (size_t)(*end - v))
        *end = (char *)v;
    return d;
}

/* A number with an optional size unit ("110KiB", "0.25", "1.5e3B"): bytes,
 * fractions allowed (coefficients per token can be under a byte).  The
 * bytes must be finite after the unit too: 1e300TiB is infinity, and an
 * infinite coefficient times an input of zero is NaN, which the estimate
 * would read as no bytes at all. */
static int parse_amount(reader *r, const char *key, const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = decimal(v, &end);
    if (end == v || !isfinite(d) || d < 0 || *v == '-' || *v == '+')
        return fail_at(r, r->line, "%s: '%s' is not a non-negative number of bytes", key, v);
    while (*end == ' ')
        end++;
    if (*end) {
        char one[24];
        uint64_t factor;
        snprintf(one, sizeof(one), "1%s", end);
        if (strlen(end) > 8 || vram_size_parse(one, &factor))
            return fail_at(r, r->line, "%s: '%s' has an unknown unit '%s' (use B, KiB, MiB, GiB, "
                           "KB, MB, GB)", key, v, end);
        d *= (double)factor;
        if (!isfinite(d))
            return fail_at(r, r->line, "%s: '%s' is too large: not a finite number of bytes", key, v);
    }
    *out = d;
    return 0;
}

/* A plain non-negative number (seconds, factors), no unit. */
static int parse_number(reader *r, const char *key, const char *v, double min, double max,
                        double *out)
{
    char *end;
    double d = decimal(v, &end);
    if (end == v || *end || !isfinite(d))
        return fail_at(r, r->line, "%s: '%s' is not a number", key, v);
    if (d < min || d > max)
        return fail_at(r, r->line, "%s: %s is out of range (%g to %g)", key, v, min, max);
    *out = d;
    return 0;
}

/* "10%" as a fraction. */
static int parse_percent(reader *r, const char *key, const char *v, double *out)
{
    size_t n = strlen(v);
    if (n < 2 || v[n - 1] != '%')
        return fail_at(r, r->line, "%s: '%s' is not a percent (e.g. 10%%)", key, v);
    char num[32];
    vram__strlcpy(num, v, n < sizeof(num) ? n : sizeof(num));
    double d;
    if (parse_number(r, key, num, 0, 100, &d))
        return r->rc;
    *out = d / 100.0;
    return 0;
}

/* A parameter count: "14e9", "14B", "1.3B", "39M", "123456". */
static int parse_count(reader *r, const char *key, const char *v, double *out)
{
    char *end;
    double d = decimal(v, &end);
    double mult = 1;
    if (end != v && *end && !end[1]) {
        switch (*end) {
        case 'K': mult = 1e3; end++; break;
        case 'M': mult = 1e6; end++; break;
        case 'B': case 'G': mult = 1e9; end++; break;
        case 'T': mult = 1e12; end++; break;
        }
    }
    if (end == v || *end || !isfinite(d) || d <= 0 || d * mult > 1e15)
        return fail_at(r, r->line, "%s: '%s' is not a parameter count (e.g. 14e9, 14B, 39M)", key, v);
    *out = d * mult;
    return 0;
}

static int parse_dims(reader *r, const char *key, const char *v, unsigned out[3])
{
    unsigned a, b, c;
    char tail;
    if (sscanf(v, "%ux%ux%u%c", &a, &b, &c, &tail) != 3 || !a || !b || !c || a > 64 || b > 64 ||
        c > 64)
        return fail_at(r, r->line, "%s: '%s' is not TxHxW with each 1 to 64 (e.g. 4x8x8)", key, v);
    out[0] = a;
    out[1] = b;
    out[2] = c;
    return 0;
}

static int parse_dtype(reader *r, const char *key, const char *v, int *out)
{
    for (int i = 0; i < PLAN_NDTYPES; i++)
        if (!strcmp(v, plan__dtype_name(i))) {
            *out = i;
            return 0;
        }
    return fail_at(r, r->line, "%s: '%s' is not fp32, bf16, fp16 or int8", key, v);
}

static int parse_text(reader *r, const char *key, const char *v, char *dst, size_t cap)
{
    if (strlen(v) >= cap)
        return fail_at(r, r->line, "%s: text longer than %zu characters", key, cap - 1);
    vram__strlcpy(dst, v, cap);
    return 0;
}

bool plan__valid_name(const char *s)
{
    if (!*s || strlen(s) >= PLAN_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return true;
}

bool plan__valid_hf_id(const char *s)
{
    const char *slash = strchr(s, '/');
    size_t n = strlen(s);
    if (!slash || strchr(slash + 1, '/') || slash == s || !slash[1] || n >= 96 || strstr(s, ".."))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.' || *s == '/'))
            return false;
    return true;
}

/* ---- bookkeeping ---------------------------------------------------------------- */

/* Records key in the open section; a second time is an error. */
static int note_key(reader *r, const char *key)
{
    for (int i = 0; i < r->nseen; i++)
        if (!strcmp(r->seen[i].section, r->section) && !strcmp(r->seen[i].key, key))
            return fail_at(r, r->line, "'%s' given twice in [%s] (first at line %d)", key, r->section,
                           r->seen[i].line);
    if (r->nseen == MAX_SEEN)
        return fail_at(r, r->line, "too many keys (at most %d)", MAX_SEEN);
    vram__strlcpy(r->seen[r->nseen].section, r->section, sizeof(r->seen[0].section));
    vram__strlcpy(r->seen[r->nseen].key, key, sizeof(r->seen[0].key));
    r->seen[r->nseen++].line = r->line;
    return 0;
}

static int settings_add(reader *r, plan_settings *s, const char *key, const char *value)
{
    if (s->n == PLAN_MAX_SETTINGS)
        return fail_at(r, r->line, "too many settings in [%s] (at most %d)", r->section,
                       PLAN_MAX_SETTINGS);
    int w = snprintf(s->kv[s->n], sizeof(s->kv[0]), "%s=%s", key, value);
    if (w < 0 || (size_t)w >= sizeof(s->kv[0]))
        return fail_at(r, r->line, "%s: value too long", key);
    /* Checked against the whole profile later; the grammar now. */
    plan_params scratch;
    memset(&scratch, 0, sizeof(scratch));
    scratch.fps = 24;
    if (plan__params_set(NULL, &scratch, s->kv[s->n]))
        return fail_value(r, key);
    s->line[s->n++] = r->line;
    return 0;
}

/* ---- opening sections ------------------------------------------------------------ */

static int open_named(reader *r, enum section_kind kind, const char *name)
{
    vram_profile *p = r->p;
    if (!plan__valid_name(name))
        return fail_at(r, r->line, "[%s]: '%s' is not a name (lower-case letters, digits, '-', '_', "
                       "'.'; under %d characters)", r->section, name, PLAN_NAME_MAX);
    bool dup = false;
    switch (kind) {
    case SEC_COMPONENT:
        dup = plan__component_find(p, name) >= 0;
        if (!dup && p->ncomp == PLAN_MAX_COMPONENTS)
            return fail_at(r, r->line, "at most %d components", PLAN_MAX_COMPONENTS);
        if (!dup) {
            r->index = p->ncomp++;
            vram__strlcpy(p->comp[r->index].name, name, PLAN_NAME_MAX);
            p->comp[r->index].blocks = 1;
            p->comp[r->index].dtype = -1;
            p->comp[r->index].line = r->section_line;
            r->weights_dtype[r->index] = -1;
        }
        break;
    case SEC_STAGE:
        dup = plan__stage_find(p, name) >= 0;
        if (!dup && p->nstage == PLAN_MAX_STAGES)
            return fail_at(r, r->line, "at most %d stages", PLAN_MAX_STAGES);
        if (!dup) {
            plan_stage *s = &p->stage[r->index = p->nstage++];
            vram__strlcpy(s->name, name, PLAN_NAME_MAX);
            s->runs = -1;
            s->cfg_memory = 1;
            s->tiling = 1;
            s->share = 1;
            s->line = r->section_line;
        }
        break;
    case SEC_TIER:
        dup = plan__tier_find(p, name) >= 0;
        if (!dup && p->ntier == PLAN_MAX_TIERS)
            return fail_at(r, r->line, "at most %d tiers", PLAN_MAX_TIERS);
        if (!dup) {
            r->index = p->ntier++;
            vram__strlcpy(p->tier[r->index].name, name, PLAN_NAME_MAX);
            p->tier[r->index].line = r->section_line;
        }
        break;
    case SEC_LEVER: {
        int key = plan__key_find(name);
        if (key < 0 || key == PLAN_KEY_TIER || key == PLAN_KEY_WIDTH || key == PLAN_KEY_HEIGHT)
            return fail_at(r, r->line, "[lever %s]: a lever is named after the setting it changes "
                           "(resolution, memory, precision, cfg, batch, chunk, steps, ...)", name);
        for (int i = 0; i < p->nlever; i++)
            dup |= p->lever[i].key == key;
        if (!dup && p->nlever == PLAN_MAX_LEVERS)
            return fail_at(r, r->line, "at most %d levers", PLAN_MAX_LEVERS);
        if (!dup) {
            r->index = p->nlever++;
            p->lever[r->index].key = key;
            p->lever[r->index].level = -1;
            p->lever[r->index].line = r->section_line;
        }
        break;
    }
    default:
        break;
    }
    if (dup)
        return fail_at(r, r->section_line, "[%s] given twice", r->section);
    return 0;
}

/* Called when inih's section differs from the open one, or the same name
 * has a new header line. */
static int open_section(reader *r, const char *section)
{
    vram__strlcpy(r->section, section, sizeof(r->section));
    r->open_line = r->section_line;
    r->kind = SEC_NONE;
    char word[32] = "", name[96] = "";
    if (sscanf(section, "%31s %95s", word, name) < 1)
        return fail_at(r, r->line, "a key outside any [section]");
    for (size_t i = 0; i < VRAM__ARRAY_LEN(section_words); i++) {
        if (strcmp(word, section_words[i].word))
            continue;
        if (section_words[i].named != (name[0] != '\0'))
            return fail_at(r, r->section_line, "[%s]: %s", section,
                           section_words[i].named ? "needs a name, e.g. [stage denoise]"
                                                  : "takes no name");
        r->kind = section_words[i].kind;
        if (section_words[i].named)
            return open_named(r, r->kind, name);
        if (r->header_line[r->kind])
            return fail_at(r, r->section_line, "[%s] given twice (first at line %d)", section,
                           r->header_line[r->kind]);
        r->header_line[r->kind] = r->section_line;
        return 0;
    }
    return fail_at(r, r->section_line, "unknown section [%s] (sections: profile, defaults, latent, "
                   "overhead, time, component NAME, stage NAME, tier NAME, lever NAME, ladder, "
                   "calibration, args)", section);
}

/* ---- keys, section by section ---------------------------------------------------- */

static int unknown(reader *r, const char *key, const char *known)
{
    return fail_at(r, r->line, "unknown key '%s' in [%s] (keys: %s)", key, r->section, known);
}

static int on_profile(reader *r, const char *k, const char *v)
{
    vram_profile *p = r->p;
    if (!strcmp(k, "name")) {
        if (!plan__valid_name(v))
            return fail_at(r, r->line, "name: '%s' is not a name (lower-case letters, digits, "
                           "'-', '_', '.')", v);
        return parse_text(r, k, v, p->name, sizeof(p->name));
    }
    if (!strcmp(k, "title"))
        return parse_text(r, k, v, p->title, sizeof(p->title));
    if (!strcmp(k, "source"))
        return parse_text(r, k, v, p->source, sizeof(p->source));
    if (!strcmp(k, "hf_id")) {
        /* The checkpoints' Hugging Face ids, space-separated: a model is
         * found by them too (vram_profile_load). */
        char copy[PLAN_TEXT_MAX], *save = NULL;
        vram__strlcpy(copy, v, sizeof(copy));
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
            if (!plan__valid_hf_id(w))
                return fail_at(r, r->line, "hf_id: '%s' is not a Hugging Face model id (OWNER/REPO: "
                               "letters, digits, '-', '_', '.')", w);
        return parse_text(r, k, v, p->hf_id, sizeof(p->hf_id));
    }
    if (!strcmp(k, "torch")) {
        int major, minor;
        if (sscanf(v, "%d.%d", &major, &minor) != 2)
            return fail_at(r, r->line, "torch: '%s' is not a PyTorch version (MAJOR.MINOR)", v);
        return parse_text(r, k, v, p->torch, sizeof(p->torch));
    }
    return unknown(r, k, "name, title, source, hf_id, torch");
}

static int on_latent(reader *r, const char *k, const char *v)
{
    vram_profile *p = r->p;
    if (!strcmp(k, "stride"))
        return parse_dims(r, k, v, p->stride);
    if (!strcmp(k, "patch"))
        return parse_dims(r, k, v, p->patch);
    if (!strcmp(k, "causal"))
        return parse_bool(v, &p->causal) ? 0 : fail_at(r, r->line, "causal: '%s' is not yes or no", v);
    return unknown(r, k, "stride, patch, causal");
}

static int on_overhead(reader *r, const char *k, const char *v)
{
    vram_profile *p = r->p;
    if (!strcmp(k, "cuda_context"))
        return parse_amount(r, k, v, &p->context_bytes);
    if (!strcmp(k, "slack"))
        return parse_percent(r, k, v, &p->slack);
    if (!strcmp(k, "margin"))
        return parse_percent(r, k, v, &p->margin);
    if (!strcmp(k, "lora"))
        return parse_amount(r, k, v, &p->lora_bytes);
    return unknown(r, k, "cuda_context, slack, margin, lora");
}

static int on_time(reader *r, const char *k, const char *v)
{
    vram_profile *p = r->p;
    if (!strcmp(k, "card"))
        return parse_text(r, k, v, p->card, sizeof(p->card));
    if (!strcmp(k, "bandwidth"))
        return parse_amount(r, k, v, &p->bandwidth);
    if (!strcmp(k, "cpu_factor"))
        return parse_number(r, k, v, 1, 1e4, &p->cpu_factor);
    if (!strcmp(k, "stream_latency"))
        return parse_number(r, k, v, 0, 1, &p->stream_latency);
    if (!strcmp(k, "fp32_factor"))
        return parse_number(r, k, v, 1, 100, &p->fp32_factor);
    if (!strcmp(k, "int8_factor"))
        return parse_number(r, k, v, 0.1, 10, &p->int8_factor);
    if (!strcmp(k, "tiling"))
        return parse_number(r, k, v, 1, 100, &p->tiling_time);
    return unknown(r, k, "card, bandwidth, cpu_factor, stream_latency, fp32_factor, int8_factor, "
                   "tiling");
}

static int on_component(reader *r, const char *k, const char *v)
{
    plan_component *c = &r->p->comp[r->index];
    if (!strcmp(k, "params"))
        return parse_count(r, k, v, &c->params);
    if (!strcmp(k, "weights"))      /* checkpoint bytes: params follow from its dtype */
        return parse_amount(r, k, v, &r->weights[r->index]);
    if (!strcmp(k, "weights_dtype"))
        return parse_dtype(r, k, v, &r->weights_dtype[r->index]);
    if (!strcmp(k, "dtype"))
        return parse_dtype(r, k, v, &c->dtype);
    if (!strcmp(k, "precision")) {
        if (strcmp(v, "follow") && strcmp(v, "fixed"))
            return fail_at(r, r->line, "precision: '%s' is not follow or fixed", v);
        c->follows = !strcmp(v, "follow");
        return 0;
    }
    if (!strcmp(k, "cpu"))
        return parse_bool(v, &c->cpu_ok) ? 0 : fail_at(r, r->line, "cpu: '%s' is not yes or no", v);
    if (!strcmp(k, "lora"))
        return parse_bool(v, &c->lora) ? 0 : fail_at(r, r->line, "lora: '%s' is not yes or no", v);
    if (!strcmp(k, "blocks")) {
        double d;
        if (parse_number(r, k, v, 1, 10000, &d))
            return r->rc;
        if (d != (double)(unsigned)d)   /* 2.9 blocks would silently be 2: not streamed */
            return fail_at(r, r->line, "blocks: '%s' is not a whole number", v);
        c->blocks = (unsigned)d;
        return 0;
    }
    if (!strcmp(k, "largest"))
        return parse_count(r, k, v, &c->largest);
    if (!strcmp(k, "stages")) {
        r->stages_line[r->index] = r->line;
        return parse_text(r, k, v, r->stages[r->index], PLAN_TEXT_MAX);
    }
    return unknown(r, k, "params or weights (with weights_dtype), dtype, precision, stages, "
                   "blocks, largest, cpu, lora");
}

static const char *const feature_suffix[PLAN_NFEATURES] = { "", "_per_token", "_per_token2",
                                                            "_per_pixel", "_per_area", "_per_audio" };

/* act, act_per_token, ..., time, time_per_token, ...: which one, or -1. */
static int feature_of(const char *k, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(k, prefix, n))
        return -1;
    for (int f = 0; f < PLAN_NFEATURES; f++)
        if (!strcmp(k + n, feature_suffix[f]))
            return f;
    return -1;
}

static int on_stage(reader *r, const char *k, const char *v)
{
    plan_stage *s = &r->p->stage[r->index];
    int f;
    if ((f = feature_of(k, "act")) >= 0) {
        s->act_line[f] = r->line;
        return parse_amount(r, k, v, &s->act[f]);
    }
    if ((f = feature_of(k, "time")) >= 0) {
        s->time_line[f] = r->line;
        return parse_number(r, k, v, 0, 1e9, &s->time[f]);
    }
    if (!strcmp(k, "runs")) {
        static const char *const runs[] = { "once", "chunk", "step", "frame" };
        for (int i = 0; i < 4; i++)
            if (!strcmp(v, runs[i])) {
                s->runs = i;
                return 0;
            }
        return fail_at(r, r->line, "runs: '%s' is not once, chunk, step or frame", v);
    }
    if (!strcmp(k, "guided"))
        return parse_bool(v, &s->guided) ? 0 : fail_at(r, r->line, "guided: '%s' is not yes or no", v);
    if (!strcmp(k, "optional"))
        return parse_bool(v, &s->optional) ? 0
                                           : fail_at(r, r->line, "optional: '%s' is not yes or no", v);
    if (!strcmp(k, "share"))
        return parse_number(r, k, v, 0.001, 1, &s->share);
    if (!strcmp(k, "cfg_memory"))
        return parse_number(r, k, v, 1, 2, &s->cfg_memory);
    if (!strcmp(k, "tiling"))
        return parse_number(r, k, v, 0.001, 1, &s->tiling);
    return unknown(r, k, "runs, act, act_per_token, act_per_token2, act_per_pixel, act_per_area, "
                   "act_per_audio, time (and time_per_... alike), share, guided, cfg_memory, "
                   "tiling, optional");
}

static int on_tier(reader *r, const char *k, const char *v)
{
    plan_tier *t = &r->p->tier[r->index];
    if (!strcmp(k, "range"))
        return parse_text(r, k, v, t->range, sizeof(t->range));
    if (plan__key_find(k) < 0 || !strcmp(k, "tier"))
        return unknown(r, k, "range, and settings (resolution, frames, steps, ...)");
    return settings_add(r, &t->set, k, v);
}

static int split_list(reader *r, const char *k, const char *v, char out[][PLAN_NAME_MAX], int cap)
{
    char copy[PLAN_TEXT_MAX];
    if (parse_text(r, k, v, copy, sizeof(copy)))
        return -1;
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        w = vram__trim(w);
        if (!*w || strlen(w) >= PLAN_NAME_MAX || n == cap) {
            fail_at(r, r->line, "%s: '%s' is not a list of up to %d short values", k, v, cap);
            return -1;
        }
        vram__strlcpy(out[n++], w, PLAN_NAME_MAX);
    }
    if (n == 0)
        fail_at(r, r->line, "%s: an empty list", k);
    return n ? n : -1;
}

static int on_lever(reader *r, const char *k, const char *v)
{
    plan_lever *l = &r->p->lever[r->index];
    if (!strcmp(k, "values")) {
        int n = split_list(r, k, v, l->values, PLAN_MAX_VALUES);
        if (n < 0)
            return r->rc;
        l->nvalues = n;
        for (int i = 0; i < n; i++) {
            char kv[PLAN_SETTING_MAX];
            snprintf(kv, sizeof(kv), "%s=%s", plan__key_name(l->key), l->values[i]);
            plan_params scratch;
            memset(&scratch, 0, sizeof(scratch));
            if (plan__params_set(NULL, &scratch, kv))
                return fail_value(r, k);
        }
        return 0;
    }
    if (!strcmp(k, "quality")) {
        char items[PLAN_MAX_VALUES][PLAN_NAME_MAX];
        int n = split_list(r, k, v, items, PLAN_MAX_VALUES);
        if (n < 0)
            return r->rc;
        for (int i = 0; i < n; i++)
            if (parse_number(r, k, items[i], 0, 100, &l->quality[i]))
                return r->rc;
        if (l->nvalues && n != l->nvalues)
            return fail_at(r, r->line, "quality: %d costs for %d values", n, l->nvalues);
        return 0;
    }
    if (!strcmp(k, "level")) {
        static const char *const levels[] = { "basic", "balanced", "maximum" };
        for (int i = 0; i < 3; i++)
            if (!strcmp(v, levels[i])) {
                l->level = i;
                return 0;
            }
        return fail_at(r, r->line, "level: '%s' is not basic, balanced or maximum", v);
    }
    if (!strcmp(k, "reason"))
        return parse_text(r, k, v, l->reason, sizeof(l->reason));
    return unknown(r, k, "values, quality, level, reason");
}

static int on_ladder(reader *r, const char *k, const char *v)
{
    vram_profile *p = r->p;
    if (strcmp(k, "rung"))
        return unknown(r, k, "rung");
    if (p->nrung == PLAN_MAX_RUNGS)
        return fail_at(r, r->line, "at most %d rungs", PLAN_MAX_RUNGS);
    plan_settings *s = &p->rung[p->nrung++];
    char copy[PLAN_TEXT_MAX];
    if (parse_text(r, k, v, copy, sizeof(copy)))
        return r->rc;
    char *save = NULL;
    for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(w, '=');
        if (!eq)
            return fail_at(r, r->line, "rung: '%s' is not key=value", w);
        *eq = '\0';
        if (settings_add(r, s, w, eq + 1))
            return r->rc;
    }
    if (s->n == 0)
        return fail_at(r, r->line, "rung: empty");
    return 0;
}

/* "KEY = words" or "KEY.VALUE = words" (args.c gives them meaning). */
static int on_args(reader *r, const char *k, const char *v)
{
    vram_profile *p = r->p;
    char key[PLAN_NAME_MAX];
    const char *dot = strchr(k, '.');
    size_t klen = dot ? (size_t)(dot - k) : strlen(k);
    if (klen >= sizeof(key))
        return fail_at(r, r->line, "'%s' is not a setting (settings: resolution, frames, steps, batch, "
                       "memory, ...)", k);
    memcpy(key, k, klen);
    key[klen] = '\0';
    int id = plan__key_find(key);
    if (id < 0)
        return fail_at(r, r->line, "'%s' is not a setting: [args] says how the pipeline takes a "
                       "setting (resolution, width, frames, steps, batch, memory, skip, ...), as "
                       "KEY = words or KEY.VALUE = words", key);
    if (dot && !dot[1])
        return fail_at(r, r->line, "'%s': no value after the '.' (e.g. memory.lightweight)", k);
    if (p->narg == PLAN_MAX_ARGS)
        return fail_at(r, r->line, "at most %d lines in [args]", PLAN_MAX_ARGS);
    plan_arg *a = &p->arg[p->narg];
    if (parse_text(r, k, dot ? dot + 1 : "", a->value, sizeof(a->value)) ||
        parse_text(r, k, v, a->words, sizeof(a->words)))
        return r->rc;
    char why[256];
    if (!plan__args_words_ok(v, why, sizeof(why)))
        return fail_at(r, r->line, "%s: %s", k, why);
    a->key = id;
    a->line = r->line;
    p->narg++;
    return 0;
}

/* A value an [args] line is for must be written as the plan prints it, or
 * it would never match. */
static int check_arg(reader *r, const plan_arg *a)
{
    if (!a->value[0])
        return 0;
    plan_params x = r->p->base;
    char kv[PLAN_SETTING_MAX * 2], now[PLAN_SETTING_MAX];
    snprintf(kv, sizeof(kv), "%s=%s", plan__key_name(a->key), a->value);
    if (plan__params_set(r->p, &x, kv) || plan__params_finish(r->p, &x)) {
        char why[512];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return fail_at(r, a->line, "%s.%s: %s", plan__key_name(a->key), a->value, why);
    }
    plan__param_text(r->p, &x, a->key, now, sizeof(now));
    if (strcmp(now, a->value))
        return fail_at(r, a->line, "%s.%s: write the value as a plan gives it: %s.%s",
                       plan__key_name(a->key), a->value, plan__key_name(a->key), now);
    return 0;
}

static int on_calibration(reader *r, const char *k, const char *v)
{
    r->p->calibrated = true;
    if (!strcmp(k, "summary"))
        return parse_text(r, k, v, r->p->calibration, sizeof(r->p->calibration));
    return 0;                       /* the rest is a record for people */
}

/* Appends an indented continuation line to the text keys that allow it. */
static int on_continuation(reader *r, const char *k, const char *v)
{
    char *dst = NULL;
    size_t cap = PLAN_TEXT_MAX;
    if (r->kind == SEC_PROFILE && !strcmp(k, "title"))
        dst = r->p->title;
    else if (r->kind == SEC_LEVER && !strcmp(k, "reason"))
        dst = r->p->lever[r->index].reason;
    else if (r->kind == SEC_CALIBRATION)
        return 0;
    if (!dst)
        return fail_at(r, r->line, "an indented line continues '%s', which takes one line", k);
    if (strlen(dst) + 1 + strlen(v) >= cap)
        return fail_at(r, r->line, "%s: text longer than %zu characters", k, cap - 1);
    strcat(dst, " ");
    strcat(dst, v);
    return 0;
}

static int dispatch(reader *r, const char *k, const char *v)
{
    switch (r->kind) {
    case SEC_PROFILE: return on_profile(r, k, v);
    case SEC_DEFAULTS:
        if (plan__key_find(k) < 0 || !strcmp(k, "tier"))
            return unknown(r, k, "the settings: resolution, frames, fps, steps, ...");
        return settings_add(r, &r->p->defaults, k, v);
    case SEC_LATENT: return on_latent(r, k, v);
    case SEC_OVERHEAD: return on_overhead(r, k, v);
    case SEC_TIME: return on_time(r, k, v);
    case SEC_COMPONENT: return on_component(r, k, v);
    case SEC_STAGE: return on_stage(r, k, v);
    case SEC_TIER: return on_tier(r, k, v);
    case SEC_LEVER: return on_lever(r, k, v);
    case SEC_LADDER: return on_ladder(r, k, v);
    case SEC_CALIBRATION: return on_calibration(r, k, v);
    case SEC_ARGS: return on_args(r, k, v);
    case SEC_NONE: break;
    }
    return fail_at(r, r->line, "a key outside any [section]");
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    reader *r = user;
    if (r->rc)
        return 1;                   /* the first error is the one reported */
    if (!*section)
        return fail_at(r, r->line, "'%s' comes before any [section]", name), 0;
    if (strcmp(section, r->section) || r->section_line != r->open_line)
        if (open_section(r, section))
            return 0;
    if (r->continuation && !strcmp(name, r->last_key))
        return on_continuation(r, name, value) == 0;
    if (r->kind != SEC_LADDER && note_key(r, name))
        return 0;
    vram__strlcpy(r->last_key, name, sizeof(r->last_key));
    if (!*value && r->kind != SEC_CALIBRATION && r->kind != SEC_ARGS)
        return fail_at(r, r->line, "%s has no value", name), 0;
    return dispatch(r, name, value) == 0;
}

/* ---- checks once the whole file is read ---------------------------------------- */

static int missing(reader *r, enum section_kind kind, const char *section, const char *key,
                   const char *hint)
{
    int line = r->header_line[kind];
    if (!line)
        return fail_at(r, 1, "no [%s] section (it needs %s)", section, hint);
    return fail_at(r, line, "[%s] has no '%s' (%s)", section, key, hint);
}

static bool defaults_have(const vram_profile *p, const char *key)
{
    size_t n = strlen(key);
    for (int i = 0; i < p->defaults.n; i++)
        if (!strncmp(p->defaults.kv[i], key, n) && p->defaults.kv[i][n] == '=')
            return true;
    return false;
}

static int check_sections(reader *r)
{
    vram_profile *p = r->p;
    if (!p->name[0])
        return missing(r, SEC_PROFILE, "profile", "name", "e.g. name = wan2.2-ti2v-5b");
    if (!p->title[0])
        return missing(r, SEC_PROFILE, "profile", "title", "one line saying what the model is");
    if (!p->source[0])
        return missing(r, SEC_PROFILE, "profile", "source", "where its numbers come from");
    if (!defaults_have(p, "resolution") && !(defaults_have(p, "width") && defaults_have(p, "height")))
        return missing(r, SEC_DEFAULTS, "defaults", "resolution", "e.g. resolution = 1280x720");
    if (!defaults_have(p, "frames") && !defaults_have(p, "duration"))
        return missing(r, SEC_DEFAULTS, "defaults", "frames", "frames or duration");
    if (!defaults_have(p, "steps"))
        return missing(r, SEC_DEFAULTS, "defaults", "steps", "denoising steps, 1 for none");
    if (!p->stride[0])
        return missing(r, SEC_LATENT, "latent", "stride", "pixels per latent cell, TxHxW: 4x8x8");
    if (p->context_bytes < 0)
        return missing(r, SEC_OVERHEAD, "overhead", "cuda_context", "a size, e.g. 500MiB");
    if (p->slack < 0)
        return missing(r, SEC_OVERHEAD, "overhead", "slack", "allocator slack, a percent");
    if (p->margin < 0)
        return missing(r, SEC_OVERHEAD, "overhead", "margin", "safety margin, a percent");
    if (!p->card[0])
        return missing(r, SEC_TIME, "time", "card", "the reference card the times are for");
    if (!(p->bandwidth > 0))
        return missing(r, SEC_TIME, "time", "bandwidth", "host to device bytes a second, e.g. 12GB");
    if (p->ncomp == 0 || p->nstage == 0)
        return fail_at(r, 1, "a profile needs at least one [component NAME] and one [stage NAME]");
    return 0;
}

static int check_component(reader *r, int i)
{
    vram_profile *p = r->p;
    plan_component *c = &p->comp[i];
    bool weights = r->weights[i] > 0;
    if (c->dtype < 0)
        return fail_at(r, c->line, "[component %s] has no 'dtype' (fp32, bf16, fp16 or int8)", c->name);
    if (weights == (c->params > 0))
        return fail_at(r, c->line, "[component %s] needs one of 'params' (a count) or 'weights' "
                       "(checkpoint bytes)", c->name);
    if (weights) {
        int wd = r->weights_dtype[i] >= 0 ? r->weights_dtype[i] : c->dtype;
        c->params = r->weights[i] / plan__dtype_bytes(wd);
    }
    if (!r->stages[i][0])
        return fail_at(r, c->line, "[component %s] has no 'stages' (the stages it runs in)", c->name);
    char copy[PLAN_TEXT_MAX];
    vram__strlcpy(copy, r->stages[i], sizeof(copy));
    char *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        w = vram__trim(w);
        int s = plan__stage_find(p, w);
        if (s < 0)
            return fail_at(r, r->stages_line[i], "stages: no [stage %s] in this profile", w);
        c->stages |= 1u << s;
        p->stage[s].components |= 1u << i;
        p->stage[s].follows |= c->follows;
    }
    if (c->largest > c->params)
        return fail_at(r, c->line, "[component %s]: largest (%g) is more than all its params (%g)",
                       c->name, c->largest, c->params);
    if (c->cpu_ok && !(p->cpu_factor > 0))
        return missing(r, SEC_TIME, "time", "cpu_factor",
                       "how much slower a stage runs on the CPU, needed by cpu = yes");
    return 0;
}

static int check_stage(reader *r, int i)
{
    const vram_profile *p = r->p;
    const plan_stage *s = &p->stage[i];
    if (s->runs < 0)
        return fail_at(r, s->line, "[stage %s] has no 'runs' (once, chunk, step or frame)", s->name);
    if (!s->components)
        return fail_at(r, s->line, "[stage %s]: no component lists it in its stages", s->name);
    /* A stage runs on the CPU when its component does: one with cpu = yes
     * must be alone in its stages. */
    for (int c = 0; c < p->ncomp; c++)
        if ((s->components & (1u << c)) && p->comp[c].cpu_ok && s->components != (1u << c))
            return fail_at(r, p->comp[c].line, "[component %s] has cpu = yes, so it must be the "
                           "only component of [stage %s]", p->comp[c].name, s->name);
    return 0;
}

/* Checks a settings list against the whole profile, reporting at its line. */
static int check_settings(reader *r, const plan_settings *s)
{
    plan_params x = r->p->base;
    for (int i = 0; i < s->n; i++)
        if (plan__params_set(r->p, &x, s->kv[i])) {
            char why[768];
            vram__strlcpy(why, vram_last_error(), sizeof(why));
            return fail_at(r, s->line[i], "%s", why);
        }
    if (plan__params_finish(r->p, &x))
        return fail_at(r, s->n ? s->line[0] : 1, "%s", vram_last_error());
    return 0;
}

static int check_lever(reader *r, plan_lever *l)
{
    const char *name = plan__key_name(l->key);
    if (l->nvalues == 0)
        return fail_at(r, l->line, "[lever %s] has no 'values' (what to try, in order)", name);
    if (l->level < 0)
        return fail_at(r, l->line, "[lever %s] has no 'level' (basic, balanced or maximum)", name);
    if (!l->reason[0])
        return fail_at(r, l->line, "[lever %s] has no 'reason' (what it changes, for people)", name);
    for (int i = 0; i < l->nvalues; i++) {
        plan_settings one = { .n = 1, .line = { l->line } };
        snprintf(one.kv[0], sizeof(one.kv[0]), "%s=%s", name, l->values[i]);
        if (check_settings(r, &one))
            return r->rc;
    }
    return 0;
}

static void set_defaults(vram_profile *p)
{
    p->context_bytes = p->slack = p->margin = -1;
    p->patch[0] = p->patch[1] = p->patch[2] = 1;
    p->stream_latency = 1e-4;
    p->fp32_factor = 2.0;
    p->int8_factor = 1.15;
    p->tiling_time = 1.2;
    p->base.fps = 24;
    p->base.batch = 1;
    p->base.cfg = true;
    p->base.precision = PLAN_BF16;
    p->base.memory = VRAM_MEMORY_AUTO;
}

static int check_profile(reader *r)
{
    vram_profile *p = r->p;
    if (check_sections(r))
        return r->rc;
    for (int i = 0; i < p->ncomp; i++)
        if (check_component(r, i))
            return r->rc;
    for (int i = 0; i < p->nstage; i++)
        if (check_stage(r, i))
            return r->rc;
    /* The defaults resolve against what set_defaults gave; then the rest
     * resolves against them. */
    if (check_settings(r, &p->defaults))
        return r->rc;
    plan__params_apply_list(p, &p->base, &p->defaults);
    if (plan__params_finish(p, &p->base))
        return fail_at(r, r->header_line[SEC_DEFAULTS], "%s", vram_last_error());
    for (int i = 0; i < p->ntier; i++) {
        plan_tier *t = &p->tier[i];
        if (t->set.n == 0)
            return fail_at(r, t->line, "[tier %s] sets nothing", t->name);
        if (check_settings(r, &t->set))
            return r->rc;
    }
    for (int i = 0; i < p->nrung; i++)
        if (check_settings(r, &p->rung[i]))
            return r->rc;
    for (int i = 0; i < p->nlever; i++)
        if (check_lever(r, &p->lever[i]))
            return r->rc;
    for (int i = 0; i < p->narg; i++)
        if (check_arg(r, &p->arg[i]))
            return r->rc;
    p->has_args = r->header_line[SEC_ARGS] != 0;
    return 0;
}

/* ---- loading ---------------------------------------------------------------------- */

int plan__profile_parse(const char *path, const char *text, size_t len, vram_profile **out)
{
    *out = NULL;
    reader *r = calloc(1, sizeof(*r));
    vram_profile *p = calloc(1, sizeof(*p));
    char *copy = malloc(len + 1);
    if (!r || !p || !copy) {
        free(r);
        free(p);
        free(copy);
        return vram__fail(VRAM_ENOMEM, "out of host memory reading %s", path);
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    set_defaults(p);
    r->p = p;
    r->path = path;
    r->text = copy;
    r->len = len;
    r->open_line = -1;
    int line = ini_parse_stream(read_line, r, on_entry, r);
    if (line > 0 && r->rc && line < r->rc_line)
        r->rc = 0;                  /* inih's syntax error came first */
    if (!r->rc && r->long_line)
        fail_at(r, r->long_line, "line longer than %d characters", INI_MAX_LINE - 3);
    else if (!r->rc && line > 0)
        fail_at(r, line, "not a [section], a 'key = value' line or a comment");
    else if (!r->rc && line < 0)
        fail_at(r, 1, "inih could not read the text");
    if (!r->rc && memchr(copy, '\0', len))
        fail_at(r, 1, "the file holds a NUL byte: not a text profile");
    if (!r->rc)
        check_profile(r);
    int rc = r->rc;
    if (rc) {
        vram__fail(rc, "%s", r->error);
        free(copy);
        free(p);
    } else {
        vram__strlcpy(p->path, path, sizeof(p->path));
        p->text = copy;
        p->text_len = len;
        *out = p;
    }
    free(r);
    return rc;
}

/* ---- lookups ------------------------------------------------------------------------ */

int plan__component_find(const vram_profile *p, const char *name)
{
    for (int i = 0; i < p->ncomp; i++)
        if (!strcmp(p->comp[i].name, name))
            return i;
    return -1;
}

int plan__stage_find(const vram_profile *p, const char *name)
{
    for (int i = 0; i < p->nstage; i++)
        if (!strcmp(p->stage[i].name, name))
            return i;
    return -1;
}

int plan__tier_find(const vram_profile *p, const char *name)
{
    for (int i = 0; i < p->ntier; i++)
        if (!strcmp(p->tier[i].name, name))
            return i;
    return -1;
}
