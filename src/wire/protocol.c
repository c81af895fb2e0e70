/* SPDX-License-Identifier: MIT */
/*
 * wire/protocol.c - turns one line from a client into a checked request.
 *
 * Strict on purpose: an unknown operation or field, a value of the wrong
 * type, a size that does not parse, an oversized line - each is refused with
 * a message that names it, so a client with a typo learns at once instead of
 * having a job run with a setting silently dropped.  The table of fields
 * below is the protocol's reference: which operations take which field.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/protocol.h"
#include "wire/queue.h"
#include "sched/template.h"

#define OP_BIT(op) (1u << (op))
#define ALL_OPS (~0u)

static const char *const op_names[] = {
#define VRAM__OP_NAME(id, name, help) name,
    VRAM_PROTO_OPS(VRAM__OP_NAME)
#undef VRAM__OP_NAME
};

const char *vram__op_name(int op)
{
    return op >= 0 && op < VRAM__OP_COUNT ? op_names[op] : "?";
}

typedef struct parse_ctx {
    vram__request *req;
    char *err;
    size_t errcap;
} parse_ctx;

static int bad(parse_ctx *p, const char *fmt, const char *a, const char *b)
{
    snprintf(p->err, p->errcap, fmt, a, b);
    return VRAM_EINVAL;
}

/* ---- field readers ---------------------------------------------------------------- */

static int read_string(parse_ctx *p, const char *name, const vram__jv *v, size_t max, const char **out)
{
    if (v->kind != VRAM__JV_STRING)
        return bad(p, "'%s' must be a string%s", name, "");
    if (v->len > max) {
        char lim[48];
        snprintf(lim, sizeof(lim), " (at most %zu bytes)", max);
        return bad(p, "'%s' is too long%s", name, lim);
    }
    *out = v->str;
    return 0;
}

static int read_int(parse_ctx *p, const char *name, const vram__jv *v, int64_t lo, int64_t hi, int64_t *out)
{
    char range[80];
    snprintf(range, sizeof(range), "a whole number from %lld to %lld", (long long)lo, (long long)hi);
    if (v->kind != VRAM__JV_NUMBER || strpbrk(v->str, ".eE"))
        return bad(p, "'%s' must be %s", name, range);
    errno = 0;
    long long x = strtoll(v->str, NULL, 10);
    if (errno == ERANGE || x < lo || x > hi || v->len > 20)
        return bad(p, "'%s' must be %s", name, range);
    *out = x;
    return 0;
}

/* A size: "6GiB" or a number of bytes. */
static int read_bytes(parse_ctx *p, const char *name, const vram__jv *v, uint64_t *out)
{
    if (v->kind == VRAM__JV_NUMBER) {
        if (!vram__jv_uint(v, out))
            return bad(p, "'%s' must be a whole number of bytes or a size such as \"6GiB\"%s", name, "");
    } else if (v->kind == VRAM__JV_STRING) {
        if (vram_size_parse(v->str, out))
            return bad(p, "'%s': %s", name, vram_last_error());
    } else {
        return bad(p, "'%s' must be a size such as \"6GiB\" or a number of bytes%s", name, "");
    }
    if (*out == 0)
        return bad(p, "'%s' must be more than 0 bytes%s", name, "");
    return 0;
}

static int read_argv(parse_ctx *p, const vram__jv *v)
{
    vram__request *r = p->req;
    if (v->kind != VRAM__JV_ARRAY || v->n == 0)
        return bad(p, "'argv' must be a non-empty array of strings (the command and its arguments)%s%s", "", "");
    if (v->n > VRAM__PROTO_MAX_ARGS)
        return bad(p, "'argv' has too many arguments%s%s", "", "");
    for (size_t i = 0; i < v->n; i++) {
        int rc = read_string(p, "argv", v->items[i], 65536, &r->argv[i]);
        if (rc)
            return rc;
    }
    if (!*r->argv[0])
        return bad(p, "'argv' starts with an empty command%s%s", "", "");
    r->argc = v->n;
    r->argv[v->n] = NULL;
    return 0;
}

/* "env": {"KEY": "value", ...}, the environment the job runs with. */
static int read_env(parse_ctx *p, const vram__jv *v)
{
    if (v->kind != VRAM__JV_OBJECT)
        return bad(p, "'env' must be an object of strings%s%s", "", "");
    if (v->n > VRAM__PROTO_MAX_ENV)
        return bad(p, "'env' has too many variables%s%s", "", "");
    for (size_t i = 0; i < v->n; i++) {
        if (!*v->keys[i] || strchr(v->keys[i], '='))
            return bad(p, "'env' has a bad variable name '%s'%s", v->keys[i], "");
        if (v->items[i]->kind != VRAM__JV_STRING)
            return bad(p, "'env' value of '%s' must be a string%s", v->keys[i], "");
    }
    p->req->env = v;
    return 0;
}

static int read_settings(parse_ctx *p, const vram__jv *v)
{
    if (v->kind != VRAM__JV_OBJECT)
        return bad(p, "'settings' must be an object of key: value%s%s", "", "");
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i]->kind != VRAM__JV_STRING && v->items[i]->kind != VRAM__JV_NUMBER)
            return bad(p, "setting '%s' must be a string or a number%s", v->keys[i], "");
    p->req->settings = v;
    return 0;
}

static int read_device(parse_ctx *p, const vram__jv *v)
{
    if (v->kind == VRAM__JV_STRING && !strcmp(v->str, "auto")) {
        p->req->device = -1;
        return 0;
    }
    int64_t d;
    int rc = read_int(p, "device", v, 0, 63, &d);
    if (rc)
        return bad(p, "'device' must be \"auto\" or a device number from 0 to 63%s%s", "", "");
    p->req->device = (int)d;
    return 0;
}

static const char *const list_phases[VRAM__LIST_PHASES] = { "running", "starting", "queued", "done" };

int vram__list_cursor_parse(const char *text, int *phase, uint64_t *id)
{
    for (int k = 0; text && k < VRAM__LIST_PHASES; k++) {
        size_t n = strlen(list_phases[k]);
        if (strncmp(text, list_phases[k], n) || text[n] != ':' || text[n + 1] < '0' || text[n + 1] > '9')
            continue;
        uint64_t v = 0;
        const char *s = text + n + 1;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (UINT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (uint64_t)(*s - '0');
        }
        if (*s)
            return -1;
        *phase = k;
        *id = v;
        return 0;
    }
    return -1;
}

void vram__list_cursor_format(char *buf, size_t cap, int phase, uint64_t id)
{
    snprintf(buf, cap, "%s:%llu", phase >= 0 && phase < VRAM__LIST_PHASES ? list_phases[phase] : "done",
             (unsigned long long)id);
}

static int read_state(parse_ctx *p, const vram__jv *v)
{
    int rc = read_string(p, "state", v, 32, &p->req->state);
    if (rc)
        return rc;
    if (vram__job_state_parse(p->req->state) >= 0)
        return 0;
    return bad(p, "'state' '%s' is not one of %s", p->req->state, vram__job_state_list());
}

/* ---- the field table ---------------------------------------------------------------- */

enum field_id {
    F_V, F_ID, F_OP, F_ARGV, F_ENV, F_CWD, F_NAME, F_MODEL, F_SETTINGS, F_LADDER, F_PRIORITY, F_TIME,
    F_VRAM, F_DEVICE, F_WAIT, F_HOLDER, F_STATE, F_LIMIT, F_JOB, F_PID, F_LEASE, F_EXIT, F_OUTCOME,
    F_PGID, F_PEAK, F_PROGRESS, F_CHECK, F_KEY, F_ENFORCE, F_USED, F_OVER, F_AFTER, F_OUTPUT, F_AFTER_JOBS,
    F_AFTEROK_JOBS, F_OFFSET, F_NEXT,
};

static const struct {
    const char *name;
    enum field_id id;
    unsigned ops;                   /* where it is accepted */
} fields[] = {
    { "v", F_V, ALL_OPS },
    { "id", F_ID, ALL_OPS },
    { "op", F_OP, ALL_OPS },
    { "argv", F_ARGV, OP_BIT(VRAM__OP_SUBMIT) },
    { "env", F_ENV, OP_BIT(VRAM__OP_SUBMIT) },
    { "cwd", F_CWD, OP_BIT(VRAM__OP_SUBMIT) },
    { "name", F_NAME, OP_BIT(VRAM__OP_SUBMIT) },
    { "model", F_MODEL, OP_BIT(VRAM__OP_SUBMIT) },
    { "settings", F_SETTINGS, OP_BIT(VRAM__OP_SUBMIT) },
    { "ladder", F_LADDER, OP_BIT(VRAM__OP_SUBMIT) },
    { "priority", F_PRIORITY, OP_BIT(VRAM__OP_SUBMIT) },
    { "time_ms", F_TIME, OP_BIT(VRAM__OP_SUBMIT) },
    { "check", F_CHECK, OP_BIT(VRAM__OP_SUBMIT) },
    { "key", F_KEY, OP_BIT(VRAM__OP_SUBMIT) },
    { "vram", F_VRAM, OP_BIT(VRAM__OP_SUBMIT) | OP_BIT(VRAM__OP_LEASE) | OP_BIT(VRAM__OP_JOB_RUNG) },
    { "device", F_DEVICE, OP_BIT(VRAM__OP_SUBMIT) | OP_BIT(VRAM__OP_LEASE) },
    { "wait_ms", F_WAIT, OP_BIT(VRAM__OP_LEASE) | OP_BIT(VRAM__OP_JOB_RUNG) },
    { "holder", F_HOLDER, OP_BIT(VRAM__OP_LEASE) },
    { "state", F_STATE, OP_BIT(VRAM__OP_LIST) },
    { "limit", F_LIMIT, OP_BIT(VRAM__OP_LIST) },
    { "after", F_AFTER, OP_BIT(VRAM__OP_LIST) },
    { "job", F_JOB, OP_BIT(VRAM__OP_SHOW) | OP_BIT(VRAM__OP_CANCEL) | OP_BIT(VRAM__OP_JOB_CLAIM) |
                    OP_BIT(VRAM__OP_JOB_RUNG) | OP_BIT(VRAM__OP_JOB_ENDED) | OP_BIT(VRAM__OP_OWNER) |
                    OP_BIT(VRAM__OP_JOB_PROGRESS) | OP_BIT(VRAM__OP_LOG) },
    { "pid", F_PID, OP_BIT(VRAM__OP_JOB_CLAIM) },
    { "lease", F_LEASE, OP_BIT(VRAM__OP_RELEASE) | OP_BIT(VRAM__OP_OWNER) },
    { "pgid", F_PGID, OP_BIT(VRAM__OP_OWNER) },
    { "exit_status", F_EXIT, OP_BIT(VRAM__OP_JOB_ENDED) },
    { "outcome", F_OUTCOME, OP_BIT(VRAM__OP_JOB_ENDED) },
    { "peak", F_PEAK, OP_BIT(VRAM__OP_JOB_ENDED) },
    { "progress", F_PROGRESS, OP_BIT(VRAM__OP_JOB_PROGRESS) },
    { "enforce", F_ENFORCE, OP_BIT(VRAM__OP_SUBMIT) },
    { "used", F_USED, OP_BIT(VRAM__OP_JOB_PROGRESS) },
    { "over", F_OVER, OP_BIT(VRAM__OP_JOB_PROGRESS) },
    { "output", F_OUTPUT, OP_BIT(VRAM__OP_SUBMIT) },
    { "after_jobs", F_AFTER_JOBS, OP_BIT(VRAM__OP_SUBMIT) },
    { "afterok_jobs", F_AFTEROK_JOBS, OP_BIT(VRAM__OP_SUBMIT) },
    { "offset", F_OFFSET, OP_BIT(VRAM__OP_LOG) },
    { "next", F_NEXT, OP_BIT(VRAM__OP_JOB_ENDED) },
};

/* "after_jobs"/"afterok_jobs": [job ids] the job starts after (afterok:
 * only when they succeeded). */
static int read_deps(parse_ctx *p, const char *name, const vram__jv *v, bool ok)
{
    vram__request *r = p->req;
    if (v->kind != VRAM__JV_ARRAY)
        return bad(p, "'%s' must be an array of job ids%s", name, "");
    for (size_t i = 0; i < v->n; i++) {
        int64_t x;
        if (read_int(p, name, v->items[i], 1, INT64_MAX, &x))
            return bad(p, "'%s' must be an array of job ids (whole numbers from 1)%s", name, "");
        if (r->ndeps == VRAM__PROTO_MAX_DEPS) {
            char lim[32];
            snprintf(lim, sizeof(lim), "%d", VRAM__PROTO_MAX_DEPS);
            return bad(p, "a job may wait for at most %s jobs ('%s')", lim, name);
        }
        r->dep_ok[r->ndeps] = ok;
        r->deps[r->ndeps++] = (uint64_t)x;
    }
    return 0;
}

static int read_field(parse_ctx *p, enum field_id id, const char *name, const vram__jv *v)
{
    vram__request *r = p->req;
    int64_t x;
    int rc;
    switch (id) {
    case F_V:
        if ((rc = read_int(p, "v", v, 1, 1000, &x)))
            return rc;
        return x == VRAM__PROTO_VERSION ? 0 : bad(p, "protocol version %s is not spoken here (this daemon speaks 1)%s", v->str, "");
    case F_ID:
    case F_OP:
        return 0;                   /* read first, in vram__request_parse */
    case F_ARGV: return read_argv(p, v);
    case F_ENV: return read_env(p, v);
    case F_CWD:
        if ((rc = read_string(p, name, v, 4096, &r->cwd)))
            return rc;
        return r->cwd[0] == '/' ? 0 : bad(p, "'cwd' must be an absolute path, not '%s'%s", r->cwd, "");
    case F_NAME: return read_string(p, name, v, 128, &r->name);
    case F_KEY:
        if ((rc = read_string(p, name, v, 64, &r->key)))
            return rc;
        for (const char *k = r->key; *k; k++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", *k))
                return bad(p, "'key' is 1 to 64 of A-Z a-z 0-9 _ . : -, not '%s'%s", r->key, "");
        return *r->key ? 0 : bad(p, "'key' is empty%s%s", "", "");
    case F_MODEL: return read_string(p, name, v, 128, &r->model);
    case F_SETTINGS: return read_settings(p, v);
    case F_LADDER: return read_string(p, name, v, 8000, &r->ladder);
    case F_PRIORITY:
        rc = read_int(p, name, v, -100, 100, &r->priority);
        return rc;
    case F_TIME: {
        int64_t ms;
        if ((rc = read_int(p, name, v, 1, 366LL * 86400 * 1000, &ms)))
            return rc;
        r->time_ms = r->time_limit_ms = (uint64_t)ms;
        return 0;
    }
    case F_CHECK:
    case F_NEXT:
        if (v->kind != VRAM__JV_BOOL)
            return bad(p, "'%s' must be true or false%s", name, "");
        *(id == F_CHECK ? &r->check : &r->next) = v->b;
        return 0;
    case F_VRAM: return read_bytes(p, name, v, &r->bytes);
    case F_DEVICE: return read_device(p, v);
    case F_WAIT:
        if ((rc = read_int(p, name, v, 0, INT64_MAX, &x)))
            return rc;
        r->wait_ms = (uint64_t)x;
        return 0;
    case F_HOLDER: return read_string(p, name, v, 128, &r->holder);
    case F_STATE: return read_state(p, v);
    case F_AFTER: {
        const char *text;
        if ((rc = read_string(p, name, v, VRAM__LIST_CURSOR_MAX, &text)))
            return rc;
        if (vram__list_cursor_parse(text, &r->after_phase, &r->after_id))
            return bad(p, "'after' is a list page's \"next\" (running:ID, starting:ID, queued:ID or done:ID), "
                          "not '%s'%s", text, "");
        return 0;
    }
    case F_LIMIT:
        if ((rc = read_int(p, name, v, 1, 1000000, &x)))
            return rc;
        r->limit = (uint64_t)x;
        return 0;
    case F_JOB:
        if ((rc = read_int(p, name, v, 1, INT64_MAX, &x)))
            return rc;
        r->job = (uint64_t)x;
        return 0;
    case F_PID:
        if ((rc = read_int(p, name, v, 1, 4194304, &x)))
            return rc;
        r->runner_pid = (uint64_t)x;
        return 0;
    case F_LEASE:
        if ((rc = read_int(p, name, v, 1, INT64_MAX, &x)))
            return rc;
        r->lease = (uint64_t)x;
        return 0;
    case F_EXIT:
        if ((rc = read_int(p, name, v, 0, 255, &x)))
            return rc;
        r->exit_status = (int)x;
        return 0;
    case F_OUTCOME:
        if ((rc = read_string(p, name, v, 15, &r->outcome)))
            return rc;
        return vram__job_outcome_ok(r->outcome) ? 0 : bad(p, "'%s' must be an outcome such as \"ok\" or \"oom\" "
                                                    "(a-z and '-'%s)", name, "");
    case F_PGID:
        if ((rc = read_int(p, name, v, 1, 4194304, &x)))
            return rc;
        r->pgid = (uint64_t)x;
        return 0;
    case F_PROGRESS:
        if (v->kind != VRAM__JV_NUMBER || !(v->num >= 0 && v->num <= 1))
            return bad(p, "'progress' must be a number from 0 to 1%s%s", "", "");
        r->progress = v->num;
        return 0;
    case F_PEAK:
        if (!vram__jv_uint(v, &r->peak))
            return bad(p, "'peak' must be a whole number of bytes%s%s", "", "");
        return 0;
    case F_ENFORCE:
        if ((rc = read_string(p, name, v, 8, &r->enforce)))
            return rc;
        return !strcmp(r->enforce, "hard") || !strcmp(r->enforce, "soft") || !strcmp(r->enforce, "off")
                   ? 0 : bad(p, "'enforce' must be hard, soft or off, not '%s'%s", r->enforce, "");
    case F_OUTPUT:
        if ((rc = read_string(p, name, v, 4000, &r->output)))
            return rc;
        return r->output[0] == '/' ? 0 : bad(p, "'output' must be an absolute path, not '%s'%s", r->output, "");
    case F_AFTER_JOBS: return read_deps(p, name, v, false);
    case F_AFTEROK_JOBS: return read_deps(p, name, v, true);
    case F_OFFSET:
        if ((rc = read_int(p, name, v, 0, INT64_MAX, &x)))
            return rc;
        r->offset = (uint64_t)x;
        return 0;
    case F_USED:
    case F_OVER:
        if (!vram__jv_uint(v, id == F_USED ? &r->used : &r->over))
            return bad(p, "'%s' must be a whole number of bytes%s", name, "");
        r->have_usage = true;
        return 0;
    }
    return VRAM_EINTERNAL;
}

/* A submit's ladder, parsed once for both checks: it parses, and its first
 * rung's budget agrees with the job's (and sizes the job when the job gives
 * none); and the command's {key} values come from its settings, that first
 * rung and, with a model, its plan: one that names another is refused now,
 * not queued to fail at its start. */
static int check_ladder_and_command(parse_ctx *p)
{
    vram__request *r = p->req;
    vram_ladder *l = NULL;
    if (r->ladder && *r->ladder &&
        (vram_ladder_parse(r->ladder, &l) || vram_ladder_first_budget(l, r->bytes, &r->bytes))) {
        vram_ladder_free(l);
        return bad(p, "'ladder': %s%s", vram_last_error(), "");
    }
    const vram__jv *s = r->settings;
    int rc = vram__template_check_command((char *const *)r->argv, s ? (const char *const *)s->keys : NULL,
                                          s ? s->n : 0, l, r->model && *r->model);
    vram_ladder_free(l);
    return rc ? bad(p, "%s%s", vram_last_error(), "") : 0;
}

/* What each operation cannot do without. */
static int check_required(parse_ctx *p)
{
    vram__request *r = p->req;
    const char *op = vram__op_name(r->op);
    switch (r->op) {
    case VRAM__OP_SUBMIT:
        if (!r->argc)
            return bad(p, "%s needs 'argv' (the command to run)%s", op, "");
        if (check_ladder_and_command(p))
            return VRAM_EINVAL;
        if (!r->bytes && !r->model)
            return bad(p, "%s needs 'vram' (a size) or 'model' (a profile) to size the job%s", op, "");
        return 0;
    case VRAM__OP_SHOW:
    case VRAM__OP_CANCEL:
    case VRAM__OP_LOG:
        return r->job ? 0 : bad(p, "%s needs 'job' (a job id)%s", op, "");
    case VRAM__OP_JOB_ENDED:
        return r->job && r->outcome ? 0 : bad(p, "%s needs 'job' and 'outcome'%s", op, "");
    case VRAM__OP_JOB_PROGRESS:
        return r->job && (r->progress >= 0 || r->have_usage)
                   ? 0 : bad(p, "%s needs 'job' and 'progress' or 'used'%s", op, "");
    case VRAM__OP_JOB_CLAIM:
        return r->job && r->runner_pid ? 0 : bad(p, "%s needs 'job' and 'pid'%s", op, "");
    case VRAM__OP_LEASE:
        return r->bytes ? 0 : bad(p, "%s needs 'vram' (a size)%s", op, "");
    case VRAM__OP_JOB_RUNG:
        return r->job && r->bytes ? 0 : bad(p, "%s needs 'job' and 'vram'%s", op, "");
    case VRAM__OP_RELEASE:
        return r->lease ? 0 : bad(p, "%s needs 'lease' (the id the lease reply gave)%s", op, "");
    case VRAM__OP_OWNER:
        if (!r->pgid || !r->lease == !r->job)
            return bad(p, "%s needs 'pgid' and one of 'lease' or 'job'%s", op, "");
        return 0;
    default:
        return 0;
    }
}

/* An id is echoed raw in the reply: one holding a control character (a
 * newline would end the reply's line early and forge the next) is not kept,
 * and the request is refused for it. */
static bool plain_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

static void keep_id(vram__request *r, const vram__jv *id)
{
    if (!id)
        return;
    if (id->kind == VRAM__JV_NUMBER && id->len < sizeof(r->id))
        memcpy(r->id, id->str, id->len + 1);
    else if (id->kind == VRAM__JV_STRING && id->len + 2 < sizeof(r->id) && plain_text(id->str, id->len))
        snprintf(r->id, sizeof(r->id), "\"%s\"", id->str);
}

int vram__request_parse(const char *line, size_t len, vram__request *req, char *err, size_t errcap)
{
    memset(req, 0, sizeof(*req));
    req->device = -1;
    req->wait_ms = UINT64_MAX;
    req->after_phase = -1;
    req->progress = -1;
    parse_ctx p = { req, err, errcap };
    err[0] = '\0';
    if (len > VRAM__PROTO_MAX_LINE) {
        snprintf(err, errcap, "request of %zu bytes is over the limit of %d", len, VRAM__PROTO_MAX_LINE);
        return VRAM_EINVAL;
    }
    int rc = vram__json_read(line, len, 20000, &req->doc, err, errcap);
    if (rc)
        return rc;
    const vram__jv *root = vram__json_root(req->doc);
    if (root->kind != VRAM__JV_OBJECT) {
        rc = bad(&p, "a request is a JSON object%s%s", "", "");
        goto fail;
    }
    keep_id(req, vram__jv_get(root, "id"));
    const vram__jv *id = vram__jv_get(root, "id");
    if (id && id->kind != VRAM__JV_NUMBER && id->kind != VRAM__JV_STRING) {
        rc = bad(&p, "'id' must be a number or a string%s%s", "", "");
        goto fail;
    }
    if (id && !req->id[0]) {
        rc = bad(&p, "'id' must be a short string without quotes, backslashes or control characters, or a number%s%s", "", "");
        goto fail;
    }
    const char *op = vram__jv_str(vram__jv_get(root, "op"));
    if (!op) {
        rc = bad(&p, "a request needs 'op' (one of hello, submit, list, show, cancel, lease, release, subscribe, status)%s%s", "", "");
        goto fail;
    }
    req->op = -1;
    for (int i = 0; i < VRAM__OP_COUNT; i++)
        if (!strcmp(op_names[i], op))
            req->op = i;
    if (req->op < 0) {
        rc = bad(&p, "unknown op '%s'%s", op, "");
        goto fail;
    }
    for (size_t i = 0; i < root->n; i++) {
        size_t f = 0;
        while (f < sizeof(fields) / sizeof(fields[0]) && strcmp(fields[f].name, root->keys[i]))
            f++;
        if (f == sizeof(fields) / sizeof(fields[0]) || !(fields[f].ops & OP_BIT(req->op))) {
            rc = bad(&p, "unknown field '%s' in %s", root->keys[i], op);
            goto fail;
        }
        if ((rc = read_field(&p, fields[f].id, fields[f].name, root->items[i])))
            goto fail;
    }
    if ((rc = check_required(&p)))
        goto fail;
    return 0;
fail:
    vram__json_doc_free(req->doc);
    char id_text[sizeof(req->id)];
    memcpy(id_text, req->id, sizeof(id_text));
    memset(req, 0, sizeof(*req));
    memcpy(req->id, id_text, sizeof(id_text));
    return rc;
}

void vram__request_free(vram__request *req)
{
    vram__json_doc_free(req->doc);
    req->doc = NULL;
}

/* ---- replies ------------------------------------------------------------------------ */

void vram__reply_begin(vram__buf *b, const vram__request *req, vram__json *j)
{
    vram__json_init(j, b);
    vram__json_object_begin(j);
    if (req && req->id[0]) {
        vram__json_key(j, "id");
        vram__json_raw(j, req->id);
    }
    vram__json_field_bool(j, "ok", true);
}

void vram__reply_end(vram__json *j)
{
    vram__json_object_end(j);
    vram__buf_put(j->out, "\n", 1);
}

void vram__reply_error(vram__buf *b, const char *id, int err, const char *message)
{
    vram__json j;
    vram__json_init(&j, b);
    vram__json_object_begin(&j);
    if (id && *id) {
        vram__json_key(&j, "id");
        vram__json_raw(&j, id);
    }
    vram__json_field_bool(&j, "ok", false);
    vram__json_field_string(&j, "error", vram_errname(err));
    vram__json_field_string(&j, "message", message && *message ? message : vram_strerror(err));
    vram__json_object_end(&j);
    vram__buf_put(b, "\n", 1);
}
