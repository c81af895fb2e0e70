/* SPDX-License-Identifier: MIT */
/*
 * wire/client.c - the client side of the daemon's protocol: what `vram
 * submit`, `vram queue`, `vram wait`, `vram cancel`, `vram run` and the
 * Python binding use to talk to vramd.
 *
 * Requests are written with the library's JSON writer and replies read with
 * its strict reader, so both ends agree on one grammar.  An error reply
 * becomes the vram error it names, with the daemon's message.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/protocol.h"
#include "wire/sock.h"

extern char **environ;

struct vram_client {
    int fd;
    vram__buf pending;
    char path[4096];
    uint64_t next_id;
};

/* Whether a daemon run by uid may be told our requests (and environment):
 * ours, root's, or the user VRAM_DAEMON_USER names (a shared daemon run by
 * a service account). */
static bool trusted(uint32_t uid)
{
    if (uid == 0 || uid == geteuid())
        return true;
    const char *name = getenv("VRAM_DAEMON_USER");
    if (!name || !*name)
        return false;
    struct passwd pw, *found = NULL;
    char scratch[1024];
    return getpwnam_r(name, &pw, scratch, sizeof(scratch), &found) == 0 && found && found->pw_uid == uid;
}

/* Before anything is sent: the socket file and the process listening on it
 * (SO_PEERCRED, the kernel's word) must be a trusted user's.  Another user
 * squatting the path in a shared folder would otherwise be sent a submit's
 * whole environment. */
static int check_daemon(const char *path, int fd)
{
    struct stat st;
    uint32_t pid = 0, uid = 0;
    if (lstat(path, &st) != 0)
        return vram__fail(VRAM_EIO, "cannot look at the socket %s: %s", path, strerror(errno));
    if (!trusted(st.st_uid))
        return vram__fail(VRAM_EPERM, "the socket %s belongs to uid %u, not to you or root: not talking to it "
                          "(set VRAM_DAEMON_USER to the user a shared vramd runs as)", path, (unsigned)st.st_uid);
    int rc = vram__sock_peer(fd, &pid, &uid);
    if (!rc && !trusted(uid))
        rc = vram__fail(VRAM_EPERM, "the daemon at %s runs as uid %u (pid %u), not as you or root: not talking "
                        "to it (set VRAM_DAEMON_USER to the user a shared vramd runs as)", path, (unsigned)uid,
                        (unsigned)pid);
    return rc;
}

int vram_client_open(const char *socket_path, vram_client **out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_client_open: NULL output");
    *out = NULL;
    vram_client *c = calloc(1, sizeof(*c));
    if (!c)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    int rc = 0;
    if (socket_path && *socket_path)
        vram__strlcpy(c->path, socket_path, sizeof(c->path));
    else
        rc = vram__sock_default_path(c->path, sizeof(c->path));
    if (!rc)
        rc = vram__sock_connect(c->path, &c->fd);
    if (!rc && (rc = check_daemon(c->path, c->fd)))
        close(c->fd);
    if (rc) {
        free(c);
        return rc;
    }
    vram__buf_init(&c->pending);
    *out = c;
    return 0;
}

void vram_client_close(vram_client *c)
{
    if (!c)
        return;
    close(c->fd);
    vram__buf_free(&c->pending);
    free(c);
}

const char *vram_client_socket(const vram_client *c)
{
    return c ? c->path : "";
}

/* What a reply from the daemon may hold: a list of every job it keeps
 * (tens of thousands, some 25 values each) is well inside. */
#define REPLY_MAX_VALUES ((size_t)50 * 1000 * 1000)

/* Checks a reply line: an error reply becomes its code and message. */
static int reply_status(const char *line, vram__json_doc **doc_out)
{
    char err[256];
    int rc = vram__json_read(line, strlen(line), REPLY_MAX_VALUES, doc_out, err, sizeof(err));
    if (rc)
        return vram__fail(VRAM_EPARSE, "the daemon's reply is not JSON (%s)", err);
    const vram__jv *root = vram__json_root(*doc_out);
    const vram__jv *ok = vram__jv_get(root, "ok");
    if (ok && ok->kind == VRAM__JV_BOOL && ok->b)
        return 0;
    const char *name = vram__jv_str(vram__jv_get(root, "error"));
    const char *message = vram__jv_str(vram__jv_get(root, "message"));
    rc = vram__fail(name ? vram_errcode(name) : VRAM_EINTERNAL, "%s",
                    message ? message : "the daemon refused the request");
    vram__json_doc_free(*doc_out);
    *doc_out = NULL;
    return rc;
}

/* Sends a request and waits for the reply with the same id; events pushed
 * meanwhile (subscriptions) are skipped. */
static int call(vram_client *c, const char *request, size_t len, int timeout_ms, char **line_out)
{
    int rc = vram__sock_send_all(c->fd, request, len);
    if (rc)
        return rc;
    for (;;) {
        char *line;
        rc = vram__sock_read_line(c->fd, &c->pending, timeout_ms < 0 ? -1 : timeout_ms, &line);
        if (rc)
            return rc;
        if (!strncmp(line, "{\"event\"", 8)) {
            free(line);
            continue;
        }
        *line_out = line;
        return 0;
    }
}

/* Sends one request and reads its reply, parsed (doc) and as text (line). */
static int call_parsed(vram_client *c, const char *request_json, int timeout_ms, char **line_out,
                       vram__json_doc **doc_out)
{
    *line_out = NULL;
    *doc_out = NULL;
    size_t len = strlen(request_json);
    if (len > VRAM__PROTO_MAX_LINE || memchr(request_json, '\n', len))
        return vram__fail(VRAM_EINVAL, "a request is one line of at most %d bytes", VRAM__PROTO_MAX_LINE);
    char *framed = malloc(len + 2);
    if (!framed)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    memcpy(framed, request_json, len);
    framed[len] = '\n';
    char *line;
    int rc = call(c, framed, len + 1, timeout_ms, &line);
    free(framed);
    if (rc)
        return rc;
    if ((rc = reply_status(line, doc_out))) {
        free(line);
        return rc;
    }
    *line_out = line;
    return 0;
}

int vram_client_call(vram_client *c, const char *request_json, int timeout_ms, char **reply_json)
{
    if (!c || !request_json || !reply_json)
        return vram__fail(VRAM_EINVAL, "vram_client_call: NULL argument");
    vram__json_doc *doc;
    int rc = call_parsed(c, request_json, timeout_ms, reply_json, &doc);
    vram__json_doc_free(doc);
    return rc;
}

/* Runs a request built in b and gives back the reply's document. */
static int roundtrip(vram_client *c, vram__buf *b, int timeout_ms, vram__json_doc **doc_out)
{
    *doc_out = NULL;
    if (b->failed)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    char *line;
    int rc = call_parsed(c, b->data, timeout_ms, &line, doc_out);
    vram__buf_free(b);
    free(line);
    return rc;
}

static void begin(vram_client *c, vram__buf *b, vram__json *j, const char *op)
{
    vram__buf_init(b);
    vram__json_init(j, b);
    vram__json_object_begin(j);
    vram__json_field_uint(j, "v", VRAM__PROTO_VERSION);
    vram__json_field_uint(j, "id", ++c->next_id);
    vram__json_field_string(j, "op", op);
}

/* "key=value" strings as an object. */
static int kv_object(vram__json *j, const char *const *kv, size_t n)
{
    vram__json_object_begin(j);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        if (!eq || eq == kv[i])
            return vram__fail(VRAM_EINVAL, "'%s' is not key=value", kv[i]);
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv[i]), kv[i]);
        vram__json_field_string(j, key, eq + 1);
    }
    vram__json_object_end(j);
    return 0;
}

/* VRAM_EINVAL, naming what and showing it escaped, unless text is UTF-8:
 * the queue keeps text, and a byte that is not would reach the job changed. */
static int utf8_text(const char *what, const char *text)
{
    if (!text || vram__utf8_valid(text))
        return 0;
    char shown[256];
    return vram__fail(VRAM_EINVAL, "%s is not UTF-8 text ('%s'): vramd queues text only", what,
                      vram_text_escape(text, shown, sizeof(shown)));
}

/* Every text of a submit (its environment and folder are here's when it
 * names none), checked before anything is sent. */
static int submit_texts(const vram_submit *s)
{
    const char *const *env = s->env ? s->env : (const char *const *)environ;
    char here[4096], what[96];
    const char *cwd = s->cwd ? s->cwd : getcwd(here, sizeof(here));
    int rc = 0;
    for (size_t i = 0; !rc && s->argv[i]; i++) {
        snprintf(what, sizeof(what), "word %zu of the command", i + 1);
        rc = utf8_text(what, s->argv[i]);
    }
    for (size_t i = 0; !rc && env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        snprintf(what, sizeof(what), "the environment's %.*s", eq ? (int)(eq - env[i]) : 0, env[i]);
        rc = utf8_text(vram__utf8_valid(what) ? what : "a variable of the environment", env[i]);
    }
    for (size_t i = 0; !rc && i < s->nsettings; i++)
        rc = utf8_text("a --set setting", s->settings[i]);
    if (!rc)
        rc = utf8_text("the current folder", cwd);
    const char *const named[][2] = { { "the model", s->model }, { "the name", s->name }, { "the key", s->key },
                                     { "the ladder", s->ladder }, { "the output file", s->output } };
    for (size_t i = 0; !rc && i < sizeof(named) / sizeof(named[0]); i++)
        rc = utf8_text(named[i][0], named[i][1]);
    return rc;
}

/* A submit request; with check, the daemon only says whether it would
 * queue the job, and *job_out stays 0. */
static int submit(vram_client *c, const vram_submit *s, bool check, uint64_t *job_out)
{
    *job_out = 0;
    int bad = submit_texts(s);
    if (bad)
        return bad;
    vram__buf b;
    vram__json j;
    begin(c, &b, &j, "submit");
    vram__json_key(&j, "argv");
    vram__json_array_begin(&j);
    for (const char *const *a = s->argv; *a; a++)
        vram__json_string(&j, *a);
    vram__json_array_end(&j);
    vram__json_key(&j, "env");
    size_t nenv = 0;
    const char *const *env = s->env ? s->env : (const char *const *)environ;
    while (env && env[nenv])
        nenv++;
    int rc = kv_object(&j, env, nenv);
    char cwd[4096];
    if (!s->cwd && !getcwd(cwd, sizeof(cwd)))
        rc = vram__fail(errno == EACCES ? VRAM_EPERM : VRAM_ENOENT,   /* not VRAM_EIO: nothing was sent */
                        "cannot read the current directory: %s", strerror(errno));
    vram__json_field_string(&j, "cwd", s->cwd ? s->cwd : cwd);
    if (s->vram_bytes)
        vram__json_field_uint(&j, "vram", s->vram_bytes);
    if (s->model)
        vram__json_field_string(&j, "model", s->model);
    if (s->nsettings) {
        vram__json_key(&j, "settings");
        if (!rc)
            rc = kv_object(&j, s->settings, s->nsettings);
    }
    if (s->ladder)
        vram__json_field_string(&j, "ladder", s->ladder);
    if (s->version >= 2 && s->enforce)
        vram__json_field_string(&j, "enforce", s->enforce);
    if (s->device >= 0)
        vram__json_field_int(&j, "device", s->device);
    if (s->priority)
        vram__json_field_int(&j, "priority", s->priority);
    if (s->name)
        vram__json_field_string(&j, "name", s->name);
    if (s->version >= 2 && s->key)
        vram__json_field_string(&j, "key", s->key);
    uint64_t limit = s->time_ms > s->time_limit_ms ? s->time_ms : s->time_limit_ms;
    if (limit)
        vram__json_field_uint(&j, "time_ms", limit);
    if (s->version >= 3) {
        const char *names[2] = { "after_jobs", "afterok_jobs" };
        const uint64_t *ids[2] = { s->after, s->afterok };
        size_t ns[2] = { s->nafter, s->nafterok };
        for (int k = 0; k < 2; k++) {
            if (!ns[k] || !ids[k])
                continue;
            vram__json_key(&j, names[k]);
            vram__json_array_begin(&j);
            for (size_t i = 0; i < ns[k]; i++)
                vram__json_uint(&j, ids[k][i]);
            vram__json_array_end(&j);
        }
        if (s->output)
            vram__json_field_string(&j, "output", s->output);
    }
    if (check)
        vram__json_field_bool(&j, "check", true);
    vram__json_object_end(&j);
    if (!rc && b.len > VRAM__PROTO_MAX_LINE)     /* said as what makes it big, not as a line */
        rc = vram__fail(VRAM_EINVAL, "the job's command, environment and settings come to %zu bytes; vramd "
                        "takes at most %d a submit (put a long command in a script; env -i ... trims the "
                        "environment)", b.len, VRAM__PROTO_MAX_LINE);
    if (rc) {
        vram__buf_free(&b);
        return rc;
    }
    vram__json_doc *doc;
    if ((rc = roundtrip(c, &b, 30000, &doc)))
        return rc;
    if (!check && !vram__jv_uint(vram__jv_get(vram__json_root(doc), "job"), job_out))
        rc = vram__fail(VRAM_EPARSE, "the daemon's submit reply has no job id");
    vram__json_doc_free(doc);
    return rc;
}

int vram_client_submit(vram_client *c, const vram_submit *s, uint64_t *job_out)
{
    if (!c || !s || !s->argv || !s->argv[0] || !job_out)
        return vram__fail(VRAM_EINVAL, "vram_client_submit: NULL argument or no command");
    int rc = vram__check_version("vram_submit", s->version, VRAM_SUBMIT_VERSION);
    return rc ? rc : submit(c, s, false, job_out);
}

int vram_client_check(vram_client *c, const vram_submit *s)
{
    if (!c || !s || !s->argv || !s->argv[0])
        return vram__fail(VRAM_EINVAL, "vram_client_check: NULL argument or no command");
    uint64_t none;
    int rc = vram__check_version("vram_submit", s->version, VRAM_SUBMIT_VERSION);
    return rc ? rc : submit(c, s, true, &none);
}

/* Sends {"op":OP,KEY:VALUE} and waits for the daemon's ok: the shape of cancel and release. */
static int call_with_id(vram_client *c, const char *op, const char *key, uint64_t value)
{
    vram__buf b;
    vram__json j;
    begin(c, &b, &j, op);
    vram__json_field_uint(&j, key, value);
    vram__json_object_end(&j);
    vram__json_doc *doc;
    int rc = roundtrip(c, &b, 30000, &doc);
    vram__json_doc_free(doc);
    return rc;
}

int vram_client_cancel(vram_client *c, uint64_t job)
{
    if (!c || !job)
        return vram__fail(VRAM_EINVAL, "vram_client_cancel: NULL client or job 0");
    return call_with_id(c, "cancel", "job", job);
}

int vram_client_lease(vram_client *c, uint64_t bytes, int device, int64_t wait_ms,
                      uint64_t *lease_out, unsigned *device_out)
{
    if (!c || !bytes || !lease_out)
        return vram__fail(VRAM_EINVAL, "vram_client_lease: NULL client or output, or 0 bytes");
    *lease_out = 0;
    vram__buf b;
    vram__json j;
    begin(c, &b, &j, "lease");
    vram__json_field_uint(&j, "vram", bytes);
    if (device >= 0)
        vram__json_field_int(&j, "device", device);
    if (wait_ms >= 0)
        vram__json_field_int(&j, "wait_ms", wait_ms);
    vram__json_object_end(&j);
    vram__json_doc *doc;
    int rc = roundtrip(c, &b, -1, &doc);
    if (rc)
        return rc;
    const vram__jv *root = vram__json_root(doc);
    uint64_t dev = 0;
    if (!vram__jv_uint(vram__jv_get(root, "lease"), lease_out) ||
        !vram__jv_uint(vram__jv_get(root, "device"), &dev))
        rc = vram__fail(VRAM_EPARSE, "the daemon's lease reply lacks lease or device");
    if (device_out)
        *device_out = (unsigned)dev;
    vram__json_doc_free(doc);
    return rc;
}

int vram_client_release(vram_client *c, uint64_t lease)
{
    if (!c || !lease)
        return vram__fail(VRAM_EINVAL, "vram_client_release: NULL client or lease 0");
    return call_with_id(c, "release", "lease", lease);
}

/* ---- job lists -------------------------------------------------------------------- */

/* Copies the strings of a parsed job list into one block owned by the list. */
typedef struct job_list_mem {
    vram_job_list list;
    char *strings;
    struct job_list_mem *more;      /* later pages, whose strings the jobs point into */
} job_list_mem;

static const char *text_of(const vram__jv *v)
{
    return v && v->kind == VRAM__JV_STRING ? v->str : "";
}

static uint64_t uint_of(const vram__jv *v)
{
    uint64_t u = 0;
    vram__jv_uint(v, &u);
    return u;
}

static size_t job_strings_size(const vram__jv *o)
{
    static const char *keys[] = { "name", "state", "command", "model", "tier", "outcome", "reason", "log", "user" };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        n += strlen(text_of(vram__jv_get(o, keys[i]))) + 1;
    return n;
}

static const char *keep(char **at, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(*at, s, n);
    const char *kept = *at;
    *at += n;
    return kept;
}

static void fill_job(vram_job_info *j, const vram__jv *o, char **at)
{
    j->id = uint_of(vram__jv_get(o, "id"));
    j->name = keep(at, text_of(vram__jv_get(o, "name")));
    j->state = keep(at, text_of(vram__jv_get(o, "state")));
    j->command = keep(at, text_of(vram__jv_get(o, "command")));
    j->model = keep(at, text_of(vram__jv_get(o, "model")));
    j->tier = keep(at, text_of(vram__jv_get(o, "tier")));
    j->outcome = keep(at, text_of(vram__jv_get(o, "outcome")));
    j->reason = keep(at, text_of(vram__jv_get(o, "reason")));
    j->log = keep(at, text_of(vram__jv_get(o, "log")));
    j->user = keep(at, text_of(vram__jv_get(o, "user")));
    j->uid = (uint32_t)uint_of(vram__jv_get(o, "uid"));
    j->estimate_bytes = uint_of(vram__jv_get(o, "estimate_bytes"));
    j->used_bytes = uint_of(vram__jv_get(o, "used_bytes"));
    j->peak_bytes = uint_of(vram__jv_get(o, "peak_bytes"));
    const vram__jv *p = vram__jv_get(o, "progress");
    j->progress = p && p->kind == VRAM__JV_NUMBER ? p->num : -1;
    const vram__jv *dev = vram__jv_get(o, "device");
    j->device = dev && dev->kind == VRAM__JV_NUMBER ? (int)dev->num : -1;
    j->attempt = (unsigned)uint_of(vram__jv_get(o, "attempt"));
    const vram__jv *pri = vram__jv_get(o, "priority");
    j->priority = pri && pri->kind == VRAM__JV_NUMBER ? (int)pri->num : 0;
    j->submitted_unix_ms = uint_of(vram__jv_get(o, "submitted_unix_ms"));
    j->started_unix_ms = uint_of(vram__jv_get(o, "started_unix_ms"));
    j->ended_unix_ms = uint_of(vram__jv_get(o, "ended_unix_ms"));
    const vram__jv *e = vram__jv_get(o, "exit_status");
    j->exit_status = e && e->kind == VRAM__JV_NUMBER ? (int)e->num : -1;
}

/* Turns an array of job objects into a list, with the daemon's counts and
 * ends since its start. */
static int make_list(const vram__jv *arr, const vram__jv *counts, const vram__jv *ended, vram_job_list **out)
{
    size_t n = arr && arr->kind == VRAM__JV_ARRAY ? arr->n : 0, bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += job_strings_size(arr->items[i]);
    job_list_mem *m = calloc(1, sizeof(*m));
    vram_job_info *jobs = calloc(n ? n : 1, sizeof(*jobs));
    char *strings = malloc(bytes ? bytes : 1);
    if (!m || !jobs || !strings) {
        free(m);
        free(jobs);
        free(strings);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    char *at = strings;
    for (size_t i = 0; i < n; i++)
        fill_job(&jobs[i], arr->items[i], &at);
    m->list.count = n;
    m->list.jobs = jobs;
    m->strings = strings;
    m->list.queued = uint_of(vram__jv_get(counts, "queued"));
    m->list.starting = uint_of(vram__jv_get(counts, "starting"));
    m->list.running = uint_of(vram__jv_get(counts, "running"));
    m->list.succeeded = uint_of(vram__jv_get(counts, "succeeded"));
    m->list.failed = uint_of(vram__jv_get(counts, "failed"));
    m->list.canceled = uint_of(vram__jv_get(counts, "canceled"));
    m->list.ended_succeeded = uint_of(vram__jv_get(ended, "succeeded"));
    m->list.ended_failed = uint_of(vram__jv_get(ended, "failed"));
    m->list.ended_canceled = uint_of(vram__jv_get(ended, "canceled"));
    m->list.have_ended = ended != NULL;
    *out = &m->list;
    return 0;
}

void vram_job_list_free(vram_job_list *l)
{
    if (!l)
        return;
    for (job_list_mem *m = (job_list_mem *)l, *next; m; m = next) {
        next = m->more;
        free(m->strings);
        free(m->list.jobs);
        free(m);
    }
}

/* Asks for one page of the list: at most `limit` jobs (0: the daemon's
 * page) after the cursor `after` ("": from the top). */
static int list_page(vram_client *c, const char *state, uint64_t limit, const char *after, vram__json_doc **doc)
{
    vram__buf b;
    vram__json j;
    begin(c, &b, &j, "list");
    if (state)
        vram__json_field_string(&j, "state", state);
    if (limit)
        vram__json_field_uint(&j, "limit", limit);
    if (after && *after)
        vram__json_field_string(&j, "after", after);
    vram__json_object_end(&j);
    return roundtrip(c, &b, 30000, doc);
}

/* The page's "next" into after ("" when it was the last). */
static void next_of(const vram__jv *root, char *after, size_t cap)
{
    const char *next = vram__jv_str(vram__jv_get(root, "next"));
    vram__strlcpy(after, next && strlen(next) < cap ? next : "", cap);
}

#define CLIENT_PAGE 1000            /* jobs asked for in one request */

/* Pages through the list (running, starting, queued, finished newest
 * first), appending each page to the first. */
int vram_client_jobs(vram_client *c, const char *state, uint64_t limit, vram_job_list **out)
{
    if (!c || !out)
        return vram__fail(VRAM_EINVAL, "vram_client_jobs: NULL argument");
    *out = NULL;
    char after[VRAM__LIST_CURSOR_MAX] = "";
    uint64_t left = limit ? limit : UINT64_MAX;
    job_list_mem *first = NULL, *last = NULL;
    int rc = 0;
    do {
        vram__json_doc *doc;
        if ((rc = list_page(c, state, left < CLIENT_PAGE ? left : CLIENT_PAGE, after, &doc)))
            break;
        const vram__jv *root = vram__json_root(doc);
        vram_job_list *page;
        rc = make_list(vram__jv_get(root, "jobs"), vram__jv_get(root, "counts"), vram__jv_get(root, "ended"),
                       &page);
        next_of(root, after, sizeof(after));
        vram__json_doc_free(doc);
        if (rc)
            break;
        left -= page->count < left ? page->count : left;
        if (!first) {
            first = last = (job_list_mem *)page;
            continue;
        }
        /* Later pages' jobs join the first's array; their strings stay theirs. */
        job_list_mem *m = (job_list_mem *)page;
        vram_job_info *all = realloc(first->list.jobs, (first->list.count + page->count + 1) * sizeof(*all));
        if (!all) {
            vram_job_list_free(page);
            rc = vram__fail(VRAM_ENOMEM, "out of host memory");
            break;
        }
        memcpy(all + first->list.count, page->jobs, page->count * sizeof(*all));
        first->list.jobs = all;
        first->list.count += page->count;
        free(page->jobs);
        page->jobs = NULL;
        page->count = 0;
        last->more = m;
        last = m;
    } while (*after && left);
    if (rc) {
        vram_job_list_free(first ? &first->list : NULL);
        return rc;
    }
    *out = &first->list;
    return 0;
}

int vram_client_jobs_page_leases(vram_client *c, const char *state, uint64_t limit, const char *after,
                                 vram_job_list **out, char *next, size_t nextcap,
                                 vram_lease_info *leases, size_t cap, size_t *nleases)
{
    if (!c || !out || !next || !nextcap || (nleases && cap && !leases))
        return vram__fail(VRAM_EINVAL, "vram_client_jobs_page: NULL argument");
    *out = NULL;
    next[0] = '\0';
    if (nleases)
        *nleases = 0;
    vram__json_doc *doc;
    int rc = list_page(c, state, limit, after, &doc);
    if (rc)
        return rc;
    const vram__jv *root = vram__json_root(doc);
    rc = make_list(vram__jv_get(root, "jobs"), vram__jv_get(root, "counts"), vram__jv_get(root, "ended"), out);
    next_of(root, next, nextcap);
    if (!rc && nleases)
        rc = vram__list_reply_leases(root, leases, cap, nleases);
    vram__json_doc_free(doc);
    return rc;
}

int vram_client_jobs_page(vram_client *c, const char *state, uint64_t limit, const char *after,
                          vram_job_list **out, char *next, size_t nextcap)
{
    return vram_client_jobs_page_leases(c, state, limit, after, out, next, nextcap, NULL, 0, NULL);
}

/* Writes v as JSON with j. */
static void emit(vram__json *j, const vram__jv *v)
{
    switch (v->kind) {
    case VRAM__JV_BOOL: vram__json_bool(j, v->b); break;
    case VRAM__JV_NUMBER: vram__json_raw(j, v->str); break;
    case VRAM__JV_STRING: vram__json_string(j, v->str); break;
    case VRAM__JV_ARRAY:
        vram__json_array_begin(j);
        for (size_t i = 0; i < v->n; i++)
            emit(j, v->items[i]);
        vram__json_array_end(j);
        break;
    case VRAM__JV_OBJECT:
        vram__json_object_begin(j);
        for (size_t i = 0; i < v->n; i++) {
            vram__json_key(j, v->keys[i]);
            emit(j, v->items[i]);
        }
        vram__json_object_end(j);
        break;
    default: vram__json_null(j); break;
    }
}

/* Hands what b holds to sink and empties it. */
static int drain(vram__buf *b, vram_text_sink sink, void *user, size_t over)
{
    if (b->failed)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    if (b->len <= over)
        return 0;
    int rc = sink(user, b->data, b->len);
    b->len = 0;
    b->data[0] = '\0';
    return rc;
}

/* The first page's members from index `from` (skipping "jobs", and the
 * socket's own "id", "ok" and "next", which are the wire's, not the
 * listing's), until "jobs" when stop_at_jobs. */
static size_t emit_members(vram__json *j, const vram__jv *root, size_t from, bool stop_at_jobs)
{
    size_t i = from;
    for (; root && root->kind == VRAM__JV_OBJECT && i < root->n; i++) {
        const char *k = root->keys[i];
        if (!strcmp(k, "jobs")) {
            if (stop_at_jobs)
                return i;
            continue;
        }
        if (!strcmp(k, "id") || !strcmp(k, "ok") || !strcmp(k, "next"))
            continue;
        vram__json_key(j, k);
        emit(j, root->items[i]);
    }
    return i;
}

int vram_client_jobs_json(vram_client *c, const char *state, uint64_t limit, vram_text_sink sink, void *user)
{
    if (!c || !sink)
        return vram__fail(VRAM_EINVAL, "vram_client_jobs_json: NULL argument");
    char after[VRAM__LIST_CURSOR_MAX] = "";
    uint64_t left = limit ? limit : UINT64_MAX;
    vram__json_doc *first = NULL;
    size_t rest = 0;                /* the first page's members after "jobs" */
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    int rc = 0;
    do {
        vram__json_doc *doc;
        if ((rc = list_page(c, state, left < CLIENT_PAGE ? left : CLIENT_PAGE, after, &doc)))
            break;
        const vram__jv *root = vram__json_root(doc);
        if (!first) {
            /* The document is the first page's reply, its "jobs" those of
             * every page, written as they come. */
            first = doc;
            vram__json_object_begin(&j);
            rest = emit_members(&j, root, 0, true) + 1;
            vram__json_key(&j, "jobs");
            vram__json_array_begin(&j);
        }
        const vram__jv *jobs = vram__jv_get(root, "jobs");
        size_t n = jobs && jobs->kind == VRAM__JV_ARRAY ? jobs->n : 0;
        for (size_t i = 0; i < n && !rc; i++) {
            emit(&j, jobs->items[i]);
            rc = drain(&b, sink, user, 64 << 10);
        }
        left -= n < left ? n : left;
        next_of(root, after, sizeof(after));
        if (doc != first)
            vram__json_doc_free(doc);
    } while (!rc && *after && left);
    if (!rc) {
        vram__json_array_end(&j);
        emit_members(&j, vram__json_root(first), rest, false);
        vram__json_object_end(&j);
        vram__buf_put(&b, "\n", 1);
        rc = drain(&b, sink, user, 0);
    }
    vram__json_doc_free(first);
    vram__buf_free(&b);
    return rc;
}

int vram_client_job(vram_client *c, uint64_t job, vram_job_list **out)
{
    if (!c || !out || !job)
        return vram__fail(VRAM_EINVAL, "vram_client_job: NULL argument or job 0");
    *out = NULL;
    vram__buf b;
    vram__json j;
    begin(c, &b, &j, "show");
    vram__json_field_uint(&j, "job", job);
    vram__json_object_end(&j);
    vram__json_doc *doc;
    int rc = roundtrip(c, &b, 30000, &doc);
    if (rc)
        return rc;
    /* A list of one, made from the reply's "job" object. */
    vram__jv *one = (vram__jv *)vram__jv_get(vram__json_root(doc), "job");
    vram__jv arr = { .kind = VRAM__JV_ARRAY, .n = one ? 1 : 0, .items = &one };
    rc = make_list(&arr, NULL, NULL, out);
    vram__json_doc_free(doc);
    return rc;
}

int vram_client_subscribe(vram_client *c)
{
    if (!c)
        return vram__fail(VRAM_EINVAL, "vram_client_subscribe: NULL client");
    vram__buf b;
    vram__json j;
    begin(c, &b, &j, "subscribe");
    vram__json_object_end(&j);
    vram__json_doc *doc;
    int rc = roundtrip(c, &b, 30000, &doc);
    vram__json_doc_free(doc);
    return rc;
}

int vram_client_next_event(vram_client *c, int timeout_ms, uint64_t *job_out)
{
    if (!c || !job_out)
        return vram__fail(VRAM_EINVAL, "vram_client_next_event: NULL argument");
    *job_out = 0;
    for (;;) {
        char *line;
        int rc = vram__sock_read_line(c->fd, &c->pending, timeout_ms < 0 ? -1 : timeout_ms, &line);
        if (rc)
            return rc;
        if (strncmp(line, "{\"event\"", 8)) {
            free(line);             /* a reply no one waits for any more */
            continue;
        }
        vram__json_doc *doc;
        char err[128];
        rc = vram__json_read(line, strlen(line), REPLY_MAX_VALUES, &doc, err, sizeof(err));
        free(line);
        if (rc)
            return vram__fail(VRAM_EPARSE, "the daemon's event is not JSON (%s)", err);
        const vram__jv *job = vram__jv_get(vram__json_root(doc), "job");
        *job_out = uint_of(vram__jv_get(job, "id"));
        vram__json_doc_free(doc);
        return 0;
    }
}
