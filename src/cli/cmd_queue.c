/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_queue.c - `vram queue`, `vram wait` and `vram cancel`: the
 * daemon's jobs, listed, waited for, and canceled.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "wire/queue.h"

/* ---- vram queue ---------------------------------------------------------------- */

static const cli_flag queue_flags[] = {
    { "state", 0, "STATE", "only jobs in this state (queued, starting, running, succeeded, failed, canceled)", false },
    { "limit", 'n', "N", "at most N jobs (default: all the daemon keeps)", false },
    { "json", 0, NULL, "print one JSON object: \"counts\", \"jobs\" and \"leases\"", false },
    { NULL, 0, NULL, NULL, false },
};

#define QUEUE_LEASES_SHOWN 256

/* Client leases as rows of kind "lease": who holds them (pid, and the
 * name the client gave, such as a Slurm job and step) and for how long,
 * then the requests still waiting, under the jobs' columns. */
/* A lease holder's user, as the jobs' USER column says it: the name on
 * this machine, else the uid, "-" when vramd did not say. */
static const char *lease_user(uint32_t uid, char *buf, size_t cap)
{
    struct passwd pw, *found = NULL;
    char scratch[1024];
    if (uid == UINT32_MAX)
        return "-";
    if (getpwuid_r(uid, &pw, scratch, sizeof(scratch), &found) == 0 && found)
        return vram_text_escape(found->pw_name, buf, cap);
    snprintf(buf, cap, "%u", (unsigned)uid);
    return buf;
}

static void print_leases(const vram_lease_info *leases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const vram_lease_info *l = &leases[i];
        char id[24], gpu[16] = "-", bytes[32], name[160], why[48], user[64];
        snprintf(id, sizeof(id), "L%llu", (unsigned long long)l->id);
        if (!l->waiting)
            snprintf(gpu, sizeof(gpu), "%u", l->device);
        vram_text_escape(l->holder, name, sizeof(name));
        if (l->waiting)
            printf("%7s  %-10s %4s %3s %-16s %9s %9s %5s  %-10.10s %-11s %-11s  asked by pid %u, waiting %llu s "
                   "(%s): %s\n", id, "waiting", gpu, "-", "-", cli_gib(l->bytes, bytes, sizeof(bytes)), "-", "",
                   lease_user(l->uid, user, sizeof(user)), "-", "-", l->pid, (unsigned long long)(l->held_ms / 1000),
                   vram_text_escape(*l->reason ? l->reason : "Resources", why, sizeof(why)), name);
        else
            printf("%7s  %-10s %4s %3s %-16s %9s %9s %5s  %-10.10s %-11s %-11s  held by pid %u for %llu s: %s\n",
                   id, "lease", gpu, "-", "-", cli_gib(l->bytes, bytes, sizeof(bytes)), "-", "",
                   lease_user(l->uid, user, sizeof(user)), "-", "-",
                   l->pid, (unsigned long long)(l->held_ms / 1000), name);
    }
}

/* A job's time for the listing, in local time: "14:03:22" today, "12-01 14:03"
 * before; "-" when it has not happened. */
static const char *when(uint64_t unix_ms, time_t now, char *buf, size_t cap)
{
    if (!unix_ms)
        return "-";
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm, today;
    localtime_r(&t, &tm);
    localtime_r(&now, &today);
    bool same_day = tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday;
    strftime(buf, cap, same_day ? "%H:%M:%S" : "%m-%d %H:%M", &tm);
    return buf;
}

static void print_counts(const vram_job_list *l, size_t nleases)
{
    printf("%llu queued, %llu starting, %llu running, %llu succeeded, %llu failed, %llu canceled, "
           "%zu client lease%s\n",
           (unsigned long long)l->queued, (unsigned long long)l->starting, (unsigned long long)l->running,
           (unsigned long long)l->succeeded, (unsigned long long)l->failed, (unsigned long long)l->canceled,
           nleases, nleases == 1 ? "" : "s");
}

static void print_header(void)
{
    printf("%7s  %-10s %4s %3s %-16s %9s %9s %5s  %-10s %-11s %-11s  %s\n", "JOB", "STATE", "GPU", "TRY",
           "TIER", "ESTIMATE", "USING", "DONE", "USER", "STARTED", "ENDED", "COMMAND / WHY");
}

static void print_rows(const vram_job_list *l)
{
    time_t now = time(NULL);
    for (size_t i = 0; i < l->count; i++) {
        const vram_job_info *j = &l->jobs[i];
        char est[32], used[32], gpu[16] = "-", done[16] = "", what[256], why[1024], user[64], t0[24], t1[24];
        if (j->device >= 0)
            snprintf(gpu, sizeof(gpu), "%d", j->device);
        if (j->progress >= 0)
            snprintf(done, sizeof(done), "%3.0f%%", j->progress * 100);
        if (*j->user)
            vram_text_escape(j->user, user, sizeof(user));
        else
            snprintf(user, sizeof(user), "%u", j->uid);
        printf("%7llu  %-10s %4s %3u %-16.16s %9s %9s %5s  %-10.10s %-11s %-11s  %.60s\n",
               (unsigned long long)j->id, j->state, gpu, j->attempt, *j->tier ? j->tier : "-",
               cli_gib(j->estimate_bytes, est, sizeof(est)),
               !strcmp(j->state, "running") ? cli_gib(j->used_bytes, used, sizeof(used)) : "-", done, user,
               when(j->started_unix_ms, now, t0, sizeof(t0)), when(j->ended_unix_ms, now, t1, sizeof(t1)),
               vram_text_escape(*j->name ? j->name : j->command, what, sizeof(what)));
        if (*j->reason && strcmp(j->state, "succeeded"))
            printf("%7s  %s\n", "", vram_text_escape(j->reason, why, sizeof(why)));
    }
}

static int to_stdout(void *user, const char *text, size_t len)
{
    (void)user;
    return fwrite(text, 1, len, stdout) == len ? 0 : VRAM_EIO;
}

#define QUEUE_PAGE 1000

/* The list a page at a time, printed as it comes: the first rows show at
 * once, and memory is a page's however long the queue. */
static int print_pages(vram_client *c, const char *state, uint64_t limit)
{
    vram_lease_info leases[QUEUE_LEASES_SHOWN];
    size_t nleases = 0;
    char after[64] = "", next[64];
    uint64_t left = limit ? limit : UINT64_MAX;
    int rc;
    do {
        vram_job_list *l = NULL;
        /* The first page's reply carries the client leases too: one round
         * trip for both (bench/tsp's list row). */
        if (!*after) {
            rc = vram_client_jobs_page_leases(c, state, left < QUEUE_PAGE ? left : QUEUE_PAGE, after, &l, next,
                                              sizeof(next), leases, QUEUE_LEASES_SHOWN, &nleases);
            if (rc == VRAM_ERANGE && l)
                rc = 0;
        } else {
            rc = vram_client_jobs_page(c, state, left < QUEUE_PAGE ? left : QUEUE_PAGE, after, &l, next,
                                       sizeof(next));
        }
        if (rc) {
            vram_job_list_free(l);
            return rc;
        }
        if (nleases > QUEUE_LEASES_SHOWN)
            nleases = QUEUE_LEASES_SHOWN;
        if (!*after) {
            print_counts(l, nleases);
            if (l->count || nleases)
                print_header();
        }
        print_rows(l);
        left -= l->count < left ? l->count : left;
        vram_job_list_free(l);
        memcpy(after, next, sizeof(after));
    } while (*after && left);
    print_leases(leases, nleases);
    return 0;
}

static int run_queue(cli_args *a)
{
    if (a->nrest)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s'", a->rest[0]);
    uint64_t limit = 0;
    int rc;
    if (cli_has(a, "limit") && (rc = cli_uint(a, "limit", 1, 100000000, &limit)))
        return rc;
    const char *state = cli_get(a, "state");
    if (state && vram__job_state_parse(state) < 0)     /* said now, also when no daemon answers */
        return cli_error(a, EXIT_USAGE, "--state: '%s' is not one of %s", state, vram__job_state_list());
    vram_client *c;
    if ((rc = cli_client(a, &c)))
        return rc;
    if (cli_has(a, "json"))
        /* One object of counts, jobs and leases (README "JSON output"),
         * every page's jobs in "jobs", written as the pages come. */
        rc = vram_client_jobs_json(c, cli_get(a, "state"), limit, to_stdout, NULL);
    else
        rc = print_pages(c, cli_get(a, "state"), limit);
    vram_client_close(c);
    if (rc)
        return cli_fail(a, rc, NULL);
    return fflush(stdout) ? cli_fail(a, VRAM_EIO, "cannot write the list") : EXIT_OK;
}

const cli_command cmd_queue = {
    .name = "queue",
    .usage = "[--state STATE] [--limit N] [--json]",
    .summary = "list vramd's jobs: running, queued, and the recently finished",
    .description = "Each job with its state, device, attempt (the ladder's rung), tier, estimate,\n"
                   "real usage now and progress (from the job's progress bar); a waiting or failed\n"
                   "job says why.  Leases clients hold through the socket (vram.lease in Python)\n"
                   "follow as rows of kind lease, with the pid holding each.  Older finished jobs\n"
                   "are in 'vram history'.",
    .flags = queue_flags,
    .run = run_queue,
};

/* ---- vram wait ----------------------------------------------------------------- */

static const cli_flag wait_flags[] = {
    { "all", 'a', NULL, "wait until no job is queued, starting or running", false },
    { "timeout", 't', "S", "give up after S seconds (more than 0; exit 1)", false },
    { "quiet", 'q', NULL, "no progress bar", false },
    { NULL, 0, NULL, NULL, false },
};

static bool finished(const char *state)
{
    return !strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "canceled");
}

/* done/total: the jobs ended since the wait began, of those and the ones
 * still to end; failed: of the ended, the ones that did not succeed. */
static void progress_bar(uint64_t done, uint64_t total, uint64_t failed, const vram_job_list *l)
{
    int width = 30, filled = total ? (int)((double)done / (double)total * width) : width;
    fprintf(stderr, "\r[");
    for (int i = 0; i < width; i++)
        fputs(i < filled ? "#" : ".", stderr);
    fprintf(stderr, "] %llu/%llu done  %llu running  %llu queued  %llu failed   ",
            (unsigned long long)done, (unsigned long long)total, (unsigned long long)l->running,
            (unsigned long long)l->queued, (unsigned long long)failed);
    fflush(stderr);
}

/* What `vram wait --all` has seen end since it began: the daemon's ends
 * since its start (never lowered when it forgets an old job, unlike its
 * counts) less those at the first list.  A failure that ended before the
 * wait began never counts, one that ends after its first list always does,
 * whenever the daemon trims its kept finished jobs.  A daemon restarted
 * meanwhile counts from 0 again: what the old one had seen is carried. */
typedef struct wait_ends {
    bool started;
    uint64_t base[3], last[3], carried[3];     /* succeeded, failed, canceled */
} wait_ends;

static void wait_ends_see(wait_ends *w, const vram_job_list *l, uint64_t since[3])
{
    /* A vramd from before the ends were kept: its counts instead, which
     * are right unless it trims a kept finished job while we wait. */
    uint64_t now[3] = { l->ended_succeeded, l->ended_failed, l->ended_canceled };
    if (!l->have_ended) {
        now[0] = l->succeeded;
        now[1] = l->failed;
        now[2] = l->canceled;
    }
    bool restarted = false;
    for (int k = 0; k < 3; k++)
        restarted |= w->started && now[k] < w->last[k];
    for (int k = 0; k < 3; k++) {
        if (!w->started)
            w->base[k] = now[k];
        else if (restarted) {
            w->carried[k] += w->last[k] - w->base[k];
            w->base[k] = 0;
        }
        w->last[k] = now[k];
        since[k] = w->carried[k] + now[k] - w->base[k];
    }
    w->started = true;
}

/* Until the next look at the jobs: the next job event on c (subscribed),
 * and any that came with it, or at most ms; a vramd that sends no events
 * (subscribed false) is looked at again after 200 ms. */
static void wait_for_change(vram_client *c, bool *subscribed, uint64_t ms)
{
    if (!*subscribed) {
        usleep((useconds_t)(ms < 200 ? ms : 200) * 1000);
        return;
    }
    uint64_t job;
    int rc = vram_client_next_event(c, (int)(ms < 1000 ? ms : 1000), &job);
    while (rc == 0)                 /* a burst is one more look, not one each */
        rc = vram_client_next_event(c, 0, &job);
    if (rc != VRAM_ETIMEDOUT)
        *subscribed = false;        /* read no more: the next list says what went wrong */
}

/* Whether the jobs ids[k] not yet seen ended have ended now (one show of
 * each: the cost of a look does not grow with the queue); *any_failed
 * when one of them did not succeed. */
static int look_at_jobs(cli_args *a, vram_client *c, const uint64_t *ids, bool *ended, size_t nids,
                        bool *all_done, bool *any_failed)
{
    *all_done = true;
    for (size_t k = 0; k < nids; k++) {
        if (ended[k])
            continue;
        vram_job_list *l;
        int rc = vram_client_job(c, ids[k], &l);
        if (rc == VRAM_ENOENT)
            return cli_error(a, EXIT_USAGE, "no job %llu", (unsigned long long)ids[k]);
        if (rc)
            return cli_fail(a, rc, NULL);
        const char *state = l->count ? l->jobs[0].state : "";
        ended[k] = finished(state);
        *any_failed |= ended[k] && strcmp(state, "succeeded");
        *all_done &= ended[k];
        vram_job_list_free(l);
    }
    return 0;
}

/* Follows the daemon until the jobs end, looking again at each job event
 * (vram_client_subscribe); returns 0 when all succeeded. */
static int wait_loop(cli_args *a, vram_client *c, uint64_t *ids, size_t nids, uint64_t timeout_ms)
{
    bool bar = !cli_has(a, "quiet") && isatty(STDERR_FILENO);
    bool subscribed = vram_client_subscribe(c) == 0, any_failed = false;
    bool *ended = calloc(nids + 1, sizeof(*ended));
    if (!ended)
        return cli_error(a, EXIT_FAIL, "out of host memory");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wait_ends ends = { 0 };
    int rc;
    for (;;) {
        bool all_done;
        if (nids) {
            if ((rc = look_at_jobs(a, c, ids, ended, nids, &all_done, &any_failed)))
                break;
        } else {
            vram_job_list *l;
            if ((rc = vram_client_jobs(c, NULL, 1, &l))) {
                rc = cli_fail(a, rc, NULL);
                break;
            }
            uint64_t active = l->queued + l->starting + l->running, since[3];
            wait_ends_see(&ends, l, since);
            all_done = active == 0;
            any_failed = since[1] + since[2] > 0;     /* failed or canceled while it waited */
            uint64_t done = since[0] + since[1] + since[2];
            if (bar)
                progress_bar(done, active + done, since[1] + since[2], l);
            vram_job_list_free(l);
        }
        if (all_done) {
            rc = any_failed ? EXIT_FAIL : EXIT_OK;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        uint64_t elapsed = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000 + (uint64_t)((t.tv_nsec - t0.tv_nsec) / 1000000);
        if (timeout_ms && elapsed >= timeout_ms) {
            if (bar && !nids)
                fputc('\n', stderr);
            bar = false;
            rc = cli_error(a, EXIT_FAIL, "still not done after %.1f s", (double)timeout_ms / 1000.0);
            break;
        }
        if (cli_interrupted) {
            rc = EXIT_INTERRUPTED;
            break;
        }
        wait_for_change(c, &subscribed, timeout_ms ? timeout_ms - elapsed : 1000);
    }
    if (bar && !nids)
        fputc('\n', stderr);
    free(ended);
    return rc;
}

/* The job ids among the arguments (all of them must be one), malloc'd. */
static int job_ids(cli_args *a, uint64_t **out)
{
    *out = NULL;
    uint64_t *ids = calloc((size_t)a->nrest + 1, sizeof(*ids));
    if (!ids)
        return cli_error(a, EXIT_FAIL, "out of host memory");
    for (int i = 0; i < a->nrest; i++) {
        if (!cli_parse_uint(a->rest[i], 1, INT64_MAX, &ids[i])) {
            int rc = cli_error(a, EXIT_USAGE, "'%s' is not a job id (a whole number from 1, as "
                               "'vram submit' printed it)", a->rest[i]);
            free(ids);
            return rc;
        }
    }
    *out = ids;
    return 0;
}

static int run_wait(cli_args *a)
{
    bool all = cli_has(a, "all");
    if (all == (a->nrest > 0))
        return cli_error(a, EXIT_USAGE, "give job ids or --all, %s", all ? "not both" : "one of them");
    uint64_t *ids;
    int rc = job_ids(a, &ids);
    if (rc)
        return rc;
    uint64_t timeout = 0;
    if (cli_has(a, "timeout") && (rc = cli_duration_ms(a, "timeout", CLI_SECONDS, &timeout))) {
        free(ids);
        return rc;
    }
    /* 0 would mean "no timeout" to the loop: refused, not taken. */
    if (cli_has(a, "timeout") && timeout == 0) {
        free(ids);
        return cli_error(a, EXIT_USAGE, "--timeout: '%s' would give up before the first look: give more "
                         "than 0 (e.g. 30 or 5m), or leave it out to wait until the jobs end",
                         cli_get(a, "timeout"));
    }
    vram_client *c;
    if ((rc = cli_client(a, &c))) {
        free(ids);
        return rc;
    }
    cli_catch_signals();
    rc = wait_loop(a, c, ids, (size_t)a->nrest, timeout);
    vram_client_close(c);
    free(ids);
    return rc;
}

const cli_command cmd_wait = {
    .name = "wait",
    .usage = "(JOB... | --all) [--timeout S] [--quiet]",
    .summary = "wait until jobs end (or all of them, with a progress bar on a terminal)",
    .description = "Exit status: 0 when every job waited for succeeded, 1 when one failed or was\n"
                   "canceled or the timeout passed, 2 for bad input.  With --all, the jobs waited\n"
                   "for are those that end while it waits (queued, starting or running when it\n"
                   "begins, or submitted meanwhile): a job that had ended before, failed or not,\n"
                   "does not count, however long the daemon still lists it.",
    .flags = wait_flags,
    .run = run_wait,
};

/* ---- vram cancel ---------------------------------------------------------------- */

static const cli_flag cancel_flags[] = {
    { NULL, 0, NULL, NULL, false },
};

struct id_at {
    uint64_t id;
    int at;
};

static int by_id_then_place(const void *x, const void *y)
{
    const struct id_at *a = x, *b = y;
    return a->id != b->id ? (a->id < b->id ? -1 : 1) : a->at - b->at;
}

/* For each of n ids, whether an earlier one is the same (NULL when out of
 * memory: then none is skipped, and the daemon says "already" itself). */
static bool *twice_named(const uint64_t *ids, int n)
{
    struct id_at *s = malloc((size_t)n * sizeof(*s));
    bool *again = calloc((size_t)n, sizeof(*again));
    for (int i = 0; s && again && i < n; i++)
        s[i] = (struct id_at){ ids[i], i };
    if (s && again)
        qsort(s, (size_t)n, sizeof(*s), by_id_then_place);
    for (int i = 1; s && again && i < n; i++)
        again[s[i].at] = s[i].id == s[i - 1].id;
    free(s);
    return again;
}

static int run_cancel(cli_args *a)
{
    if (!a->nrest)
        return cli_error(a, EXIT_USAGE, "give the ids of the jobs to cancel (see 'vram queue')");
    uint64_t *ids;
    int rc = job_ids(a, &ids);      /* all checked before any is canceled */
    vram_client *c;
    if (rc || (rc = cli_client(a, &c))) {
        free(ids);
        return rc;
    }
    bool *again = twice_named(ids, a->nrest);
    for (int i = 0; i < a->nrest; i++) {
        if (again && again[i])      /* a job named twice is canceled (and said) once */
            continue;
        int err = vram_client_cancel(c, ids[i]);
        if (err)
            rc = cli_fail(a, err, NULL);
        else
            printf("canceled %llu\n", (unsigned long long)ids[i]);
    }
    vram_client_close(c);
    free(again);
    free(ids);
    return rc;
}

const cli_command cmd_cancel = {
    .name = "cancel",
    .usage = "JOB...",
    .summary = "cancel queued or running jobs (a running job's processes get SIGTERM)",
    .description = NULL,
    .flags = cancel_flags,
    .run = run_cancel,
};
