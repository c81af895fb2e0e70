/* SPDX-License-Identifier: MIT */
/*
 * daemon/authz.c - who may do what on vramd's socket.
 *
 * Owns the rules; the identity they use is the kernel's (SO_PEERCRED, read
 * once when the client connects), never what a request says.  Anyone who
 * may connect may read the queue, the devices and their own leases.  A job
 * is its submitter's: cancelling it is for its owner, root, or the daemon's
 * own user; reading its output (vram log) for its owner or root.  What only a job's runner says (claim, rung, progress, end, the
 * job's process group) is taken only from the process the daemon started
 * for that job (its pid, and its start time, so a reused pid is not it).
 * A daemon that is not root takes jobs only from its own user (they would
 * run as it), unless started with group-jobs=yes.  Whom a job runs as is
 * looked up here too, and kept a while (vramd_identity_of).
 */
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "monitor/monitor.h"
#include "wire/sock.h"

static bool runner_op(const vram__request *r)
{
    return r->op == VRAM__OP_JOB_CLAIM || r->op == VRAM__OP_JOB_RUNG || r->op == VRAM__OP_JOB_PROGRESS ||
           r->op == VRAM__OP_JOB_ENDED || (r->op == VRAM__OP_OWNER && r->job);
}

/* Whether the daemon takes jobs from uid: they run as the submitter when
 * the daemon is root; else they would run as the daemon's user. */
bool vramd_may_submit(const vramd *d, uint32_t uid)
{
    uid_t me = geteuid();
    if (me == 0 || uid == me)
        return true;
    const char *group_jobs = vram_options_get(d->cfg.opts, "group-jobs");
    return group_jobs && !strcmp(group_jobs, "yes");
}

/* The account database can be slow (LDAP, sssd), and vramd's loop asks it
 * for every job it starts and every submit from another user: what it
 * said of a uid is kept for IDENTITY_TTL_MS, as nscd does, for at most
 * IDENTITY_CACHE users (the oldest is replaced).  A user's groups changed
 * meanwhile reach their jobs that much later.  A failed lookup is not
 * kept.  Under a lock: the HTTP threads ask for log paths too. */
#define IDENTITY_CACHE 32
#define IDENTITY_TTL_MS 30000

static struct {
    vramd_identity id;
    uint64_t at_ms;                 /* when it was looked up; 0: unused */
} known[IDENTITY_CACHE];
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;

static bool identity_known(uint32_t uid, vramd_identity *out)
{
    uint64_t now = vram__now_ms();
    bool found = false;
    pthread_mutex_lock(&known_lock);
    for (int i = 0; i < IDENTITY_CACHE && !found; i++)
        if (known[i].at_ms && known[i].id.uid == uid && now - known[i].at_ms < IDENTITY_TTL_MS) {
            *out = known[i].id;
            found = true;
        }
    pthread_mutex_unlock(&known_lock);
    return found;
}

static void identity_keep(const vramd_identity *id)
{
    uint64_t now = vram__now_ms();
    pthread_mutex_lock(&known_lock);
    int slot = 0;                   /* its own old entry, else the oldest */
    for (int i = 0; i < IDENTITY_CACHE; i++) {
        if (known[i].at_ms && known[i].id.uid == id->uid) {
            slot = i;
            break;
        }
        if (known[i].at_ms < known[slot].at_ms)
            slot = i;
    }
    known[slot].id = *id;
    known[slot].at_ms = now ? now : 1;
    pthread_mutex_unlock(&known_lock);
}

static int identity_look_up(uint32_t uid, vramd_identity *out)
{
    struct passwd pw, *found = NULL;
    char scratch[4096];
    if (getpwuid_r(uid, &pw, scratch, sizeof(scratch), &found) != 0 || !found)
        return vram__fail(VRAM_EPERM, "cannot run a job as uid %u: no such user", (unsigned)uid);
    out->gid = found->pw_gid;
    out->ngroups = VRAMD_MAX_GROUPS;
    if (getgrouplist(found->pw_name, found->pw_gid, out->groups, &out->ngroups) < 0)
        return vram__fail(VRAM_EPERM, "cannot run a job as %s: in more than %d groups", found->pw_name,
                          VRAMD_MAX_GROUPS);
    out->change = true;
    vram__strlcpy(out->name, found->pw_name, sizeof(out->name));
    vram__strlcpy(out->home, found->pw_dir && *found->pw_dir ? found->pw_dir : "/", sizeof(out->home));
    vram__strlcpy(out->shell, found->pw_shell && *found->pw_shell ? found->pw_shell : "/bin/sh",
                  sizeof(out->shell));
    return 0;
}

int vramd_identity_of(uint32_t uid, vramd_identity *out)
{
    memset(out, 0, sizeof(*out));
    out->uid = uid;
    if (geteuid() != 0 || uid == geteuid())
        return 0;                   /* the job runs as the daemon's user, who submitted it */
    if (identity_known(uid, out))
        return 0;
    int rc = identity_look_up(uid, out);
    if (!rc)
        identity_keep(out);
    return rc;
}

/* Between fork and exec: only system calls. */
int vramd_become(const vramd_identity *id, int log_fd)
{
    if (!id->change)
        return 0;
    if (log_fd >= 0 && fchown(log_fd, id->uid, id->gid) != 0)
        return -1;
    if (setgroups((size_t)id->ngroups, id->groups) != 0 || setgid(id->gid) != 0 || setuid(id->uid) != 0)
        return -1;
    return setuid(0) == 0 ? -1 : 0; /* never back */
}

/* Process pid's parent and group, from /proc/PID/stat; false when it is gone. */
static bool parent_and_group(uint32_t pid, unsigned *ppid, unsigned *pgrp)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%u/stat", (unsigned)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);  /* one read, no stdio: a job's start asks once */
    if (fd < 0)
        return false;
    ssize_t n = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (n <= 0)
        return false;
    line[n] = '\0';
    const char *after = strrchr(line, ')');     /* the name may hold anything but this */
    char state;
    return after && sscanf(after + 1, " %c %u %u", &state, ppid, pgrp) == 3;
}

/* Whether pgid names a process group the runner `runner` started: its
 * leader (pid pgid) is the runner's child and leads that group.  A runner
 * runs as the job's submitter, who could make it name any group (another
 * user's, init's): vramd would then follow and count that group as the
 * job's. */
static bool runner_child_group(uint32_t runner, uint32_t pgid)
{
    unsigned ppid, pgrp;
    return pgid > 1 && parent_and_group(pgid, &ppid, &pgrp) && ppid == runner && pgrp == pgid;
}

bool vramd_is_my_child(uint32_t pid)
{
    unsigned ppid, pgrp;
    return pid > 1 && parent_and_group(pid, &ppid, &pgrp) && ppid == (unsigned)getpid();
}

/* A connection refused as a job's runner keeps no pidfd of its opener
 * (kept for a runner's next request, vram__sock_peer_alive): a client
 * costs vramd one descriptor whatever it asks.  512 clients, each asking
 * as a runner, otherwise held 1,024 and left vramd out of descriptors
 * under the usual limit (test_conn_fds.sh). */
static void forget_pidfd(vramd_conn *c)
{
    if (!c->runner && c->peer_pidfd >= 0) {
        close(c->peer_pidfd);
        c->peer_pidfd = -1;
    }
}

int vramd_authorize(vramd *d, vramd_conn *c, const vram__request *r)
{
    char who[96], owner[96], me[96];
    if (r->op == VRAM__OP_SUBMIT && geteuid() == 0 && c->uid != 0) {
        vramd_identity id;          /* a job it could not become is refused now, not at its start */
        int rc = vramd_identity_of(c->uid, &id);
        if (rc)
            return rc;
    }
    if (r->op == VRAM__OP_SUBMIT && !vramd_may_submit(d, c->uid))
        return vram__fail(VRAM_EPERM, "vramd runs as %s and takes jobs only from that user: a job of %s would "
                          "run as %s (start vramd with --group-jobs yes to allow that, or as root to run each "
                          "job as its submitter)", vramd_user_text(geteuid(), me, sizeof(me)),
                          vramd_user_text(c->uid, who, sizeof(who)), vramd_user_text(geteuid(), owner, sizeof(owner)));
    if (r->op == VRAM__OP_CANCEL) {
        const vramd_job *j = vramd_job_find(d, r->job);
        if (j && c->uid != 0 && c->uid != geteuid() && c->uid != j->row.owner_uid)
            return vram__fail(VRAM_EPERM, "job %llu belongs to %s; %s may not cancel it",
                              (unsigned long long)r->job, vramd_user_text(j->row.owner_uid, owner, sizeof(owner)),
                              vramd_user_text(c->uid, who, sizeof(who)));
        return 0;
    }
    if (r->op == VRAM__OP_LOG) {    /* a job's output is its owner's (and root's) to read */
        const vramd_job *j = vramd_job_find(d, r->job);
        if (j && c->uid != 0 && c->uid != j->row.owner_uid)
            return vram__fail(VRAM_EPERM, "job %llu belongs to %s; %s may not read its output",
                              (unsigned long long)r->job, vramd_user_text(j->row.owner_uid, owner, sizeof(owner)),
                              vramd_user_text(c->uid, who, sizeof(who)));
        return 0;
    }
    if (!runner_op(r))
        return 0;
    const vramd_job *j = vramd_job_find(d, r->job);
    if (!j)
        return 0;                   /* answered "no such job" as before */
    /* A runner is known by its pid, and a pid is handed out again once its
     * process is gone: a connection whose opener has ended (kept open by a
     * process it passed it to) could otherwise speak as the runner that
     * later got that number.  The socket keeps the opener's process, and
     * says whether it is still there. */
    if (vram__sock_peer_alive(c->fd, &c->peer_pidfd) == 0) {
        forget_pidfd(c);
        return vram__fail(VRAM_EPERM, "the process that opened this connection (pid %u) has ended: only a "
                          "runner on its own connection may speak for job %llu", (unsigned)c->pid,
                          (unsigned long long)r->job);
    }
    /* The runner started ahead of a queued job's turn claims it early:
     * vramd's own child, not yet reaped, so its pid names it. */
    if (r->op == VRAM__OP_JOB_CLAIM && vramd_job_runner_ahead(d, r->job, c->pid)) {
        c->runner = true;
        return 0;
    }
    if (!j->row.runner_pid || c->pid != j->row.runner_pid ||
        !vramd_runner_alive(d, j->row.runner_pid, j->row.runner_start)) {
        forget_pidfd(c);
        return vram__fail(VRAM_EPERM, "only the runner vramd started for job %llu may say that (this is "
                          "pid %u of %s)", (unsigned long long)r->job, (unsigned)c->pid,
                          vramd_user_text(c->uid, who, sizeof(who)));
    }
    if (r->op == VRAM__OP_OWNER && !runner_child_group(j->row.runner_pid, (uint32_t)r->pgid))
        return vram__fail(VRAM_EPERM, "process group %lld is not one job %llu's runner started: a job's "
                          "group is its command's, led by the runner's child", (long long)r->pgid,
                          (unsigned long long)r->job);
    c->runner = true;
    return 0;
}
