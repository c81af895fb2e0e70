/* SPDX-License-Identifier: MIT */
/*
 * daemon/spawn.c - starting a job's runner.
 *
 * A runner is `vram run --daemon-job N --gate 3`, forked into a session of
 * its own with the job's folder, environment and log, and started at once:
 * it opens its devices, then waits at its gate (a pipe, its fd 3) until the
 * daemon has recorded the start on disk.  jobs.c opens the gate, or tells
 * the runner to go away; a runner it starts ahead of its job's turn has
 * its gate opened at once and waits in its claim instead.  The job's
 * command, settings and budget the runner gets from the daemon when it
 * claims the job, not from here.  This file knows how to start a process
 * and nothing of the job's states; and which runners it started are not
 * reaped yet, with their start times, so that telling one from an impostor
 * reads /proc once a runner, not at every word it says.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ctx.h"
#include "core/exports.h"
#include "daemon/daemon.h"
#include "monitor/monitor.h"

/* A NULL-terminated list of strings; `failed` once any could not be added,
 * so that a list short of a word is never used. */
typedef struct strv {
    char **v;
    size_t n, cap;
    bool failed;
} strv;

static void strv_add(strv *s, const char *text)
{
    if (s->failed)
        return;
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **p = realloc(s->v, cap * sizeof(*p));
        if (!p) {
            s->failed = true;
            return;
        }
        s->v = p;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(text)))
        s->failed = true;
    else
        s->n++;
    s->v[s->n] = NULL;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

/* The settings the runner must share with vramd: the same devices, and
 * the same grace for what it stops. */
static void shared_flags(vramd *d, strv *a)
{
    static const char *const names[] = { "backend", "sim", "sim-state", "margin", "interval",
                                         "nvml-library", "profiles", "kill-wait" };
    const vram_options *o = vram_ctx_options(d->ctx);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = vram_options_get(o, names[i]);
        if (!v || !*v)
            continue;
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", names[i]);
        strv_add(a, flag);
        strv_add(a, !strcmp(names[i], "backend") ? vram_ctx_backend(d->ctx) : v);
    }
}

/* `vram run --daemon-job N --gate 3 --socket S --db D [--history H] [shared
 * flags]`: nothing of the job itself, which the runner gets with its claim. */
static int runner_argv(vramd *d, const vramd_job *j, bool as_submitter, strv *a)
{
    char num[32];
    strv_add(a, d->runner_path);
    strv_add(a, "run");
    strv_add(a, "--daemon-job");
    snprintf(num, sizeof(num), "%llu", (unsigned long long)j->row.id);
    strv_add(a, num);
    strv_add(a, "--gate");
    strv_add(a, "3");               /* runner_child puts it there */
    strv_add(a, "--socket");
    strv_add(a, d->socket_path);
    strv_add(a, "--db");
    strv_add(a, d->db_path);
    if (*d->history_path && !as_submitter) {  /* a submitter's runs go to their own history */
        strv_add(a, "--history");
        strv_add(a, d->history_path);
    }
    shared_flags(d, a);
    return a->failed ? vram__fail(VRAM_ENOMEM, "out of host memory for job %llu's runner",
                                  (unsigned long long)j->row.id) : 0;
}

/* Whether the list holds NAME=... */
static bool strv_has(const strv *s, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < s->n; i++)
        if (!strncmp(s->v[i], name, n) && s->v[i][n] == '=')
            return true;
    return false;
}

/* Sets NAME=value, in place of any NAME there. */
static void strv_set(strv *s, const char *name, const char *value)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < s->n; i++)
        if (!strncmp(s->v[i], name, n) && s->v[i][n] == '=') {
            free(s->v[i]);
            s->v[i] = s->v[--s->n];
            s->v[s->n] = NULL;
            i--;
        }
    size_t len = n + strlen(value) + 2;
    char *kv = malloc(len);
    if (!kv) {
        s->failed = true;
        return;
    }
    snprintf(kv, len, "%s=%s", name, value);
    strv_add(s, kv);
    free(kv);
}

/* The job's environment, as it was when it was submitted.  A job run as
 * its submitter by a root vramd gets that account's HOME, USER, LOGNAME
 * and SHELL, whatever the submit said (as su - and systemd's User= do), and
 * a PATH when it sent none. */
static int runner_env(const vramd_job *j, const vramd_identity *who, strv *e)
{
    extern char **environ;
    vram__json_doc *doc;
    char err[64];
    if (vram__json_read(j->row.env_json, strlen(j->row.env_json), 0, &doc, err, sizeof(err)))
        return vram__fail(VRAM_EPARSE, "job %llu's environment: %s", (unsigned long long)j->row.id, err);
    const vram__jv *o = vram__json_root(doc);
    /* No environment of its own (a submit's "enforce" alone makes none):
     * the daemon's. */
    if (o->kind == VRAM__JV_OBJECT &&
        (o->n == 0 || (o->n == 1 && !strcmp(o->keys[0], "VRAM_ENFORCE"))) &&
        j->row.owner_uid == geteuid()) {   /* never another's */
        for (char **v = environ; *v; v++)
            strv_add(e, *v);
    }
    for (size_t i = 0; o->kind == VRAM__JV_OBJECT && i < o->n; i++) {
        size_t len = strlen(o->keys[i]) + o->items[i]->len + 2;
        char *kv = malloc(len);
        if (!kv) {
            e->failed = true;
            break;
        }
        snprintf(kv, len, "%s=%s", o->keys[i], o->items[i]->str);
        strv_add(e, kv);
        free(kv);
    }
    vram__json_doc_free(doc);
    if (who->change) {
        strv_set(e, "HOME", who->home);
        strv_set(e, "USER", who->name);
        strv_set(e, "LOGNAME", who->name);
        strv_set(e, "SHELL", who->shell);
    }
    if (!strv_has(e, "PATH"))
        strv_add(e, "PATH=/usr/local/bin:/usr/bin:/bin");
    /* A runner carries no job's mark (stop.c): not one a job submitted
     * from inside another job inherited from it.  It gives its job's
     * processes their own. */
    strv_set(e, "VRAMD_JOB", "");
    return e->failed ? vram__fail(VRAM_ENOMEM, "out of host memory for job %llu's environment",
                                  (unsigned long long)j->row.id) : 0;
}

/* Where the runner writes: its log, and the end file it leaves should no
 * vramd hear its end (see vramd_job_log_path). */
typedef struct runner_files {
    char log[4300], end[4300];
    bool as_submitter;              /* made by the runner once it is the submitter */
    bool end_by_fd;                 /* a home-less submitter's: made here, handed over as fd 4 */
} runner_files;

/* In the forked runner: a session of its own, the job's folder and log,
 * then `vram run`, which waits at the gate (fd 3) until the daemon has
 * recorded the start.  The daemon's descriptors go first: a runner waiting at the gate must not keep
 * the daemon's socket listening after the daemon is gone (a client would
 * connect to it and never hear back).  A job run as its submitter makes
 * its log as them, in their folder: never a file of root's they cannot
 * read, never a path of theirs that root opens. */
static void runner_child(const char *cwd, runner_files *files, const char *output, int gate, char **argv,
                         char **envp, const vramd_identity *who)
{
    setsid();
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, STDIN_FILENO);
    bool logged = !files->as_submitter && vram_job_log_enter(files->log, 0) == 0;
    /* A log beside the queue that is not the submitter's already (this
     * job's, from a runner before) is an earlier queue's job's of this
     * number (the queue made anew, its logs kept): emptied, never handed
     * to them with another's output in it. */
    struct stat st;
    if (logged && files->end_by_fd && (fstat(STDOUT_FILENO, &st) != 0 || st.st_uid != who->uid) &&
        ftruncate(STDOUT_FILENO, 0) != 0) {
        dprintf(STDERR_FILENO, "vramd: cannot empty the job's log %s: %s\n", files->log, strerror(errno));
        _exit(126);
    }
    /* The gate becomes fd 3, kept across the exec; nothing else is. */
    if (gate != 3 ? dup2(gate, 3) != 3 : fcntl(3, F_SETFD, 0) != 0) {
        dprintf(STDERR_FILENO, "vramd: cannot hand the runner its gate: %s\n", strerror(errno));
        _exit(126);
    }
    /* A submitter without a home runs as them, beside a queue whose folder
     * they cannot enter: their end file is made here and handed over open,
     * as fd 4 (the claim's reply says /dev/fd/4: jobview.c). */
    if (files->end_by_fd) {
        unlink(files->end);
        int e = open(files->end, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (e < 0 || (e != 4 && dup2(e, 4) != 4) || fcntl(4, F_SETFD, 0) != 0 ||
            fchown(4, who->uid, who->gid) != 0) {
            dprintf(STDERR_FILENO, "vramd: cannot make the job's end file %s: %s\n", files->end, strerror(errno));
            _exit(126);
        }
    }
    close_range(files->end_by_fd ? 5 : 4, ~0U, 0);
    if (vramd_become(who, logged ? STDOUT_FILENO : -1) != 0) {   /* authz.c: as its submitter */
        dprintf(STDERR_FILENO, "vramd: cannot become uid %u: %s\n", (unsigned)who->uid, strerror(errno));
        _exit(126);
    }
    if (files->as_submitter && vram_job_log_enter(files->log, 1) != 0) {
        int e = errno;              /* said in vramd's own log, where stderr still goes */
        dprintf(STDERR_FILENO, "vramd: job's log %s cannot be made as uid %u (%s): its output is lost\n",
                files->log, (unsigned)who->uid, strerror(e));
        int null_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_out >= 0) {
            dup2(null_out, STDOUT_FILENO);
            dup2(null_out, STDERR_FILENO);
        }
    }
    /* The end file: one left by an earlier queue's job of this number goes
     * (not the one made above and handed over as fd 4). */
    if (vram_job_place_enter(files->end_by_fd ? NULL : files->end, output, cwd, "vramd") != 0)
        _exit(126);
    signal(SIGPIPE, SIG_DFL);
    execve(argv[0], argv, envp);
    dprintf(STDERR_FILENO, "vramd: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

bool vramd_end_by_fd(const vramd *d, const vramd_job *j, const char *end_path)
{
    return geteuid() == 0 && j->row.owner_uid != 0 && !strncmp(end_path, d->db_path, strlen(d->db_path));
}

/* ---- the runners vramd forked and has not reaped -------------------------------------------- */

void vramd_runner_forked(vramd *d, pid_t pid)
{
    vramd_runner_reaped(d, pid);    /* an entry of an earlier process of that pid, reaped unseen */
    if (d->nkids == d->kids_cap) {
        size_t cap = d->kids_cap ? d->kids_cap * 2 : 16;
        struct vramd_kid *k = realloc(d->kids, cap * sizeof(*k));
        if (!k)
            return;
        d->kids = k;
        d->kids_cap = cap;
    }
    d->kids[d->nkids++] = (struct vramd_kid){ .pid = pid };
}

static struct vramd_kid *kid_find(vramd *d, uint32_t pid)
{
    for (size_t i = 0; pid && i < d->nkids; i++)
        if ((uint32_t)d->kids[i].pid == pid)
            return &d->kids[i];
    return NULL;
}

void vramd_runner_reaped(vramd *d, pid_t pid)
{
    for (size_t i = 0; pid > 0 && i < d->nkids; i++)
        if (d->kids[i].pid == pid) {
            d->kids[i] = d->kids[--d->nkids];
            return;
        }
}

/* pid as an unreaped runner of ours (*exited, when asked: whether it has
 * ended), its start read the first time; NULL when it is not one: ask /proc. */
static struct vramd_kid *unreaped_kid(vramd *d, uint32_t pid, bool *exited)
{
    struct vramd_kid *k = kid_find(d, pid);
    if (!k || !vram__proc_unreaped_child(pid, exited))
        return NULL;
    if (!k->start)
        k->start = vram__proc_start_ticks(pid);
    return k;
}

uint64_t vramd_runner_start(vramd *d, uint32_t pid)
{
    struct vramd_kid *k = unreaped_kid(d, pid, NULL);
    return k ? k->start : vram__proc_start_ticks(pid);
}

bool vramd_runner_alive(vramd *d, uint32_t pid, uint64_t start_ticks)
{
    bool exited;
    struct vramd_kid *k = unreaped_kid(d, pid, &exited);
    if (!k)
        return vram__proc_alive(pid, start_ticks);
    return !exited && k->start && (!start_ticks || k->start == start_ticks);   /* a zombie has ended */
}

void vramd_runner_kids_free(vramd *d)
{
    free(d->kids);
    d->kids = NULL;
    d->nkids = d->kids_cap = 0;
}

/* ---- starting one -------------------------------------------------------------------------- */

int vramd_runner_fork(vramd *d, const vramd_job *j, pid_t *pid_out, int *gate_out)
{
    strv argv = { 0 }, envp = { 0 };
    vramd_identity who;
    runner_files files = { .as_submitter = false };
    int rc = vramd_identity_of(j->row.owner_uid, &who);
    if (!rc)
        rc = vramd_job_log_path(d, j, files.log, sizeof(files.log));
    if (!rc)
        rc = vramd_job_end_path(d, j, files.end, sizeof(files.end));
    if (!rc)
        rc = runner_argv(d, j, who.change, &argv);
    if (!rc)
        rc = runner_env(j, &who, &envp);
    if (rc) {
        strv_free(&argv);
        strv_free(&envp);
        return rc;
    }
    /* In the submitter's own folder, made by the runner as them; beside
     * the queue (a system account without a home), made here and given to
     * them by vramd_become. */
    files.as_submitter = who.change && strncmp(files.log, d->db_path, strlen(d->db_path)) != 0;
    files.end_by_fd = who.change && !files.as_submitter;
    if (!files.as_submitter)
        vram__make_parent_dirs(files.log);
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0) {
        strv_free(&argv);
        strv_free(&envp);
        return vram__fail(VRAM_EIO, "cannot make a pipe: %s", strerror(errno));
    }
    pid_t pid = vram__fork_clean();
    if (pid == 0) {
        close(gate[1]);
        runner_child(j->row.cwd, &files, j->row.output, gate[0], argv.v, envp.v, &who);
    }
    close(gate[0]);
    strv_free(&argv);
    strv_free(&envp);
    if (pid < 0) {
        close(gate[1]);
        return vram__fail(VRAM_EAGAIN, "cannot start a runner: %s", strerror(errno));
    }
    *pid_out = pid;
    *gate_out = gate[1];
    vramd_runner_forked(d, pid);
    return 0;
}

int vramd_runner_gate(vramd *d, uint64_t job, pid_t pid, int gate, bool go)
{
    (void)d;
    char c = go ? 'g' : 'x';
    int rc = 0;
    if (write(gate, &c, 1) != 1 && go)
        rc = vram__fail(VRAM_EIO, "cannot release the runner of job %llu", (unsigned long long)job);
    close(gate);
    (void)pid;                      /* one told no ends at once; the loop reaps it */
    return rc;
}
