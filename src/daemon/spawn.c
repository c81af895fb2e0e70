/* SPDX-License-Identifier: MIT */
/*
 * daemon/spawn.c - starting a job's runner.
 *
 * A runner is `vram run --daemon-job N --gate 3`, forked into a session of
 * its own with the job's folder, environment and log (by the spawner, a
 * process of this program vramd starts once, without an exec of its own;
 * else forked and exec'd by vramd), and started at once:
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
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
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
                         char **envp, const vramd_identity *who, int (*entry)(int, char **))
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
    if (entry) {                    /* forked by the spawner: this program is loaded already */
        extern char **environ;
        /* Made its submitter without an exec, it is not dumpable (the
         * kernel's mark at a uid change), which the exec undid: its /proc
         * would be root's, and its job's processes could not open its
         * descriptors there, as the shim does for a region a subprocess
         * lost (/proc/RUNNER/fd/N): their calls would pass unchecked. */
        if (who->change && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
            dprintf(STDERR_FILENO, "vramd: cannot make the runner its user's: %s\n", strerror(errno));
            _exit(126);
        }
        int argc = 0;
        while (argv[argc])
            argc++;
        environ = envp;
        exit(entry(argc, argv));
    }
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

/* ---- the spawner: runners forked, not exec'd ------------------------------------------ */

/* A runner vramd starts itself costs a fork of vramd and an exec of this
 * program: its loader, its libraries, its start-up, a few hundred
 * microseconds of CPU on a VM, where every exec's CPU-feature probes trap.
 * A reused runner (jobs.c) pays none of it, but a job with no runner to
 * reuse (another user's, another environment, the first after a pause)
 * does: bench/tsp's row "a lone job's submit to its start" gives 6.1-6.6
 * ms with the spawner against 7.2-7.6 ms with --spawner no, measured in
 * turn (three runs of 3 rounds on the 2-core VM, 2026-12-05).
 * So vramd execs this program once, at its start, as `vram __spawner` with
 * a socket as its fd 3, and that process forks the runners: each runs
 * main() with the argv and environment vramd sent, as it would after an
 * exec.  It forks them with CLONE_PARENT: a runner is vramd's child as
 * before, reaped by vramd's loop and told from an impostor as one it
 * forked itself (vramd_runner_alive).  The fork is a raw clone, not glibc's
 * fork(): the spawner is single-threaded and holds no lock, and a runner's
 * thread id in its thread block is the spawner's (only a recursive or
 * error-checking mutex compares it, and consistently).
 *
 * What differs from an exec, and why it is safe:
 * - the spawner is a fresh exec, not a fork of vramd: its memory holds
 *   nothing of vramd's, and its environment only the loader's variables.
 *   A request is wiped from its memory once its runner is forked, so a
 *   runner holds no other job's words;
 * - a runner made its submitter without an exec is made dumpable again,
 *   as the exec left it: its job's processes open its descriptors in /proc
 *   (the shim's region), and its user may read its memory, which holds
 *   their own request and what the spawner wiped;
 * - runners share the spawner's address layout, not vramd's;
 * - the loader read the spawner's environment, not the job's: a runner
 *   whose environment gives a loader's variable another value than vramd's
 *   (LD_*, GLIBC_TUNABLES, MALLOC_*, a sanitizer's options) is exec'd here;
 * - its command line (ps, pgrep -f) is written over the spawner's, which
 *   has room for one: `vram run --daemon-job N --gate 3 ...`.
 * Should the spawner be gone or out of step, runners are forked and exec'd
 * here from then on, as before, and vramd says so once; a fork it could
 * not make (EAGAIN) costs it that one runner, forked and exec'd here, and
 * is said each time.  --spawner no asks for fork and exec from the start. */

#define SPAWN_MAGIC 0x76737031u     /* "vsp1": a request's head, and the spawner's hello */
#define SPAWN_MAX (16u << 20)       /* a request's words, at most */
#define SPAWN_TITLE 16384           /* room for a runner's command line */
#define SPAWN_WAIT_MS 2000          /* for the spawner's hello, and for each answer */

typedef struct spawn_head {
    uint32_t magic, len;            /* len: the words that follow */
    uint32_t nargv, nenv, has_output;
    vramd_identity who;
    runner_files files;
} spawn_head;

typedef struct spawn_reply {
    int32_t pid, err;
} spawn_reply;

/* The variables the loader (and libc, and a sanitizer's runtime) reads at
 * an exec, not later. */
static bool loader_variable(const char *kv)
{
    static const char *const starts[] = { "LD_", "GLIBC_TUNABLES=", "MALLOC_", "ASAN_OPTIONS=",
                                          "UBSAN_OPTIONS=", "LSAN_OPTIONS=", "TSAN_OPTIONS=" };
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
        if (!strncmp(kv, starts[i], strlen(starts[i])))
            return true;
    return false;
}

/* Whether envp's loader variables are vramd's, which are the spawner's. */
static bool loader_env_same(char **envp)
{
    extern char **environ;
    size_t ours = 0, theirs = 0;
    for (char **v = environ; *v; v++)
        ours += loader_variable(*v);
    for (char **v = envp; *v; v++) {
        if (!loader_variable(*v))
            continue;
        bool found = false;
        for (char **w = environ; *w && !found; w++)
            found = !strcmp(*v, *w);
        if (!found)
            return false;
        theirs++;
    }
    return ours == theirs;
}

static void spawner_down(vramd *d, const char *why)
{
    vramd_say(d, "runners are started by fork and exec from now on: the spawner %s", why);
    close(d->spawner_fd);
    d->spawner_fd = -1;
    if (d->spawner_pid > 0)         /* not reaped, so the pid is still its */
        kill(d->spawner_pid, SIGKILL);
}

void vramd_spawner_reaped(vramd *d, pid_t pid)
{
    if (pid == d->spawner_pid)
        d->spawner_pid = 0;
}

void vramd_spawner_start(vramd *d)
{
    extern char **environ;
    const char *wanted = vram_options_get(d->cfg.opts, "spawner");
    if ((d->cfg.runner && *d->cfg.runner) || (wanted && !strcmp(wanted, "no")))
        return;                     /* runners of another program, or asked so: exec'd */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        vramd_say(d, "runners are started by fork and exec: no socket for a spawner (%s)", strerror(errno));
        return;
    }
    strv env = { 0 };
    for (char **v = environ; *v; v++)
        if (loader_variable(*v))
            strv_add(&env, *v);
    strv_add(&env, "VRAMD_SPAWNER=1");   /* a list that is never NULL */
    char *pad = malloc(SPAWN_TITLE);
    pid_t pid = -1;
    if (pad && !env.failed) {
        memset(pad, '-', SPAWN_TITLE - 1);
        pad[SPAWN_TITLE - 1] = '\0';
        char *argv[] = { d->runner_path, VRAM_SPAWNER_COMMAND, pad, NULL };
        pid = vram__fork_clean();
        if (pid == 0) {
            if (sv[1] != 3 ? dup2(sv[1], 3) != 3 : fcntl(3, F_SETFD, 0) != 0)
                _exit(126);
            close_range(4, ~0U, 0);
            execve(argv[0], argv, env.v);
            _exit(127);
        }
    }
    int e = errno;
    close(sv[1]);
    free(pad);
    strv_free(&env);
    if (pid < 0) {
        close(sv[0]);
        vramd_say(d, "runners are started by fork and exec: no spawner (%s)", strerror(e));
        return;
    }
    struct timeval tv = { SPAWN_WAIT_MS / 1000, (SPAWN_WAIT_MS % 1000) * 1000 };
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    d->spawner_fd = sv[0];
    d->spawner_pid = pid;
    d->spawner_said = false;
}

void vramd_spawner_stop(vramd *d)
{
    if (d->spawner_fd >= 0)
        close(d->spawner_fd);       /* its EOF: it ends */
    d->spawner_fd = -1;
}

/* Reads exactly n bytes (the socket's timeout bounds each wait); false at
 * EOF, an error or a timeout. */
static bool read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool send_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Asks the spawner for the runner: 0, *pid_out and *gate_out (the gate's
 * write end); -1 when it cannot be asked (none, or not for this runner) or
 * failed (then it is given up), and the caller forks.  Each ask has a gate
 * of its own: one a failed spawner may yet have handed a runner is closed,
 * and that runner ends at its gate. */
static int spawner_fork(vramd *d, const vramd_job *j, const runner_files *files, const vramd_identity *who,
                        const strv *argv, const strv *envp, pid_t *pid_out, int *gate_out)
{
    if (d->spawner_fd < 0 || !loader_env_same(envp->v))
        return -1;
    if (!d->spawner_said) {
        uint32_t hello = 0;
        if (!read_full(d->spawner_fd, &hello, sizeof(hello)) || hello != SPAWN_MAGIC) {
            spawner_down(d, "did not start");
            return -1;
        }
        d->spawner_said = true;
    }
    spawn_head h;
    memset(&h, 0, sizeof(h));
    h.magic = SPAWN_MAGIC;
    h.nargv = (uint32_t)argv->n;
    h.nenv = (uint32_t)envp->n;
    h.has_output = j->row.output != NULL;
    h.who = *who;
    h.files = *files;
    size_t len = strlen(j->row.cwd) + 1 + (j->row.output ? strlen(j->row.output) + 1 : 0);
    for (size_t i = 0; i < argv->n; i++)
        len += strlen(argv->v[i]) + 1;
    for (size_t i = 0; i < envp->n; i++)
        len += strlen(envp->v[i]) + 1;
    if (len > SPAWN_MAX)
        return -1;                  /* this one is exec'd; the spawner stays */
    char *words = malloc(len), *p = words;
    int gate[2];
    if (!words || pipe2(gate, O_CLOEXEC) != 0) {
        free(words);
        return -1;
    }
    p = stpcpy(p, j->row.cwd) + 1;
    if (j->row.output)
        p = stpcpy(p, j->row.output) + 1;
    for (size_t i = 0; i < argv->n; i++)
        p = stpcpy(p, argv->v[i]) + 1;
    for (size_t i = 0; i < envp->n; i++)
        p = stpcpy(p, envp->v[i]) + 1;
    h.len = (uint32_t)len;
    /* The head carries the gate; the words follow on the same stream. */
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = { &h, sizeof(h) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &gate[0], sizeof(int));
    ssize_t w;
    while ((w = sendmsg(d->spawner_fd, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    bool sent = w > 0 && send_full(d->spawner_fd, (char *)&h + w, sizeof(h) - (size_t)w) &&
                send_full(d->spawner_fd, words, len);
    free(words);
    close(gate[0]);                 /* the spawner's copy, or its runner's, is theirs */
    spawn_reply r;
    bool answered = sent && read_full(d->spawner_fd, &r, sizeof(r));
    if (!answered) {
        spawner_down(d, sent ? "did not answer" : "cannot be asked");
        close(gate[1]);
        return -1;
    }
    if (r.pid <= 0) {               /* it read all and answered: still in step, and kept */
        vramd_say(d, "the spawner cannot fork (%s): this runner is forked and exec'd", strerror(r.err));
        close(gate[1]);
        return -1;
    }
    *pid_out = r.pid;
    *gate_out = gate[1];
    return 0;
}

/* Forks the runner here and execs it: 0, *pid_out and *gate_out. */
static int fork_here(const vramd_job *j, runner_files *files, const vramd_identity *who, const strv *argv,
                     const strv *envp, pid_t *pid_out, int *gate_out)
{
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0)
        return vram__fail(VRAM_EIO, "cannot make a pipe: %s", strerror(errno));
    pid_t pid = vram__fork_clean();
    if (pid == 0) {
        close(gate[1]);
        runner_child(j->row.cwd, files, j->row.output, gate[0], argv->v, envp->v, who, NULL);
    }
    int e = errno;
    close(gate[0]);
    if (pid < 0) {
        close(gate[1]);
        return vram__fail(VRAM_EAGAIN, "cannot start a runner: %s", strerror(e));
    }
    *pid_out = pid;
    *gate_out = gate[1];
    return 0;
}

/* Writes argv over this process's command line (the spawner's, of room
 * bytes at title), as words apart by NULs, as an exec would show them;
 * what does not fit is left off, a word at a time. */
static void set_title(char *title, size_t room, char **argv)
{
    size_t at = 0;
    for (size_t i = 0; argv[i]; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (at + n > room)
            break;
        memcpy(title + at, argv[i], n);
        at += n;
    }
    memset(title + at, 0, room - at);
}

/* A child of this process's parent (vramd), as a fork's would be else. */
static pid_t fork_for_parent(void)
{
    return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
}

int vram_daemon_spawner(int argc, char **argv, int (*entry)(int, char **))
{
    /* Its fd 3 is a socket its parent made: vramd's socketpair (not
     * "its parent is not init": a vramd that is a container's first
     * process is pid 1). */
    struct stat st;
    struct ucred peer;
    socklen_t peer_len = sizeof(peer);
    if (argc != 3 || fstat(3, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(3, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0 || peer.pid != getppid()) {
        fprintf(stderr, "vram: %s is vramd's own: vramd starts it for itself\n", VRAM_SPAWNER_COMMAND);
        return 2;
    }
    /* A vramd started with fd 0, 1 or 2 closed leaves them closed here (its
     * own are taken by what it opened since): a gate received there would
     * be lost to runner_child's /dev/null or log, and its runner would end
     * at once.  /dev/null holds them, lowest first. */
    for (int i = 0; i < 3; i++)
        if (fcntl(i, F_GETFD) < 0 && open("/dev/null", O_RDWR) != i)
            return 1;
    int fd = fcntl(3, F_DUPFD_CLOEXEC, 10);
    close(3);
    if (fd < 0)
        return 1;
    char *title = argv[0];
    size_t room = (size_t)(argv[2] + strlen(argv[2]) + 1 - argv[0]);
    memset(argv[2], 0, strlen(argv[2]));    /* shown as `vram __spawner` */
    uint32_t hello = SPAWN_MAGIC;
    if (!send_full(fd, &hello, sizeof(hello)))
        return 1;
    for (;;) {
        spawn_head h;
        int gate = -1;
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = { &h, sizeof(h) };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        ssize_t n;
        while ((n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
            ;
        if (n <= 0)
            return 0;               /* vramd is gone, or closed us */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(&gate, CMSG_DATA(c), sizeof(int));
        if (!read_full(fd, (char *)&h + n, sizeof(h) - (size_t)n) || h.magic != SPAWN_MAGIC ||
            h.len > SPAWN_MAX || gate < 0 || h.nargv < 2 || h.nargv > h.len || h.nenv > h.len)
            return 1;               /* not vramd's words: nothing more is read */
        char *words = malloc((size_t)h.len + 1);
        char **list = calloc((size_t)h.nargv + h.nenv + 2, sizeof(*list));
        if (!words || !list || !read_full(fd, words, h.len))
            return 1;
        words[h.len] = '\0';
        /* cwd, output (when has_output), argv, NULL, envp, NULL */
        char *cwd = words, *output = NULL, *p = words + strlen(words) + 1, *end = words + h.len;
        if (h.has_output && p < end) {
            output = p;
            p += strlen(p) + 1;
        }
        size_t k = 0;
        for (uint32_t i = 0; i < h.nargv + h.nenv && p < end; i++) {
            if (i == h.nargv)
                list[k++] = NULL;
            list[k++] = p;
            p += strlen(p) + 1;
        }
        spawn_reply r = { -1, EINVAL };
        if (k == (size_t)h.nargv + h.nenv + 1 && p == end) {
            pid_t pid = fork_for_parent();
            if (pid == 0) {
                close(fd);
                h.who.ngroups = h.who.ngroups < 0 ? 0 : h.who.ngroups > VRAMD_MAX_GROUPS ? VRAMD_MAX_GROUPS : h.who.ngroups;
                set_title(title, room, list);
                runner_child(cwd, &h.files, output, gate, list, list + h.nargv + 1, &h.who, entry);
            }
            r = (spawn_reply){ pid > 0 ? pid : -1, pid > 0 ? 0 : errno };
        }
        close(gate);
        explicit_bzero(words, h.len);   /* no job's words left for the next runner to hold */
        explicit_bzero(&h, sizeof(h));
        free(words);
        free(list);
        if (!send_full(fd, &r, sizeof(r)))
            return 1;
    }
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
    pid_t pid = -1;
    int gate = -1;
    rc = spawner_fork(d, j, &files, &who, &argv, &envp, &pid, &gate) == 0
             ? 0 : fork_here(j, &files, &who, &argv, &envp, &pid, &gate);
    strv_free(&argv);
    strv_free(&envp);
    if (rc)
        return rc;
    *pid_out = pid;
    *gate_out = gate;
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
