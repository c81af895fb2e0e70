/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_events.c - job events on the client side
 * (vram_client_subscribe, vram_client_next_event), which `vram wait`
 * follows instead of asking the daemon again and again: a subscribed
 * connection hears each change of a job, with its id, and still answers
 * requests; one that did not subscribe hears nothing.
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "inproc.h"
#include "core/core.h"

static char dir[64], sock_path[128];
static int stop_pipe[2];
static pthread_t daemon_thread;
static vram_daemon_config cfg;
static vram_options *opts;

static bool start_daemon(void)
{
    const char *build = getenv("VRAM_BUILD");
    static char runner[4200];
    snprintf(runner, sizeof(runner), "%s/bin/vram", build);
    snprintf(dir, sizeof(dir), "/tmp/vramd-events-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(dir) || vram_options_new(&opts))
        return false;
    snprintf(sock_path, sizeof(sock_path), "%s/vramd.sock", dir);
    if (inproc_options(opts, dir, sock_path, "127.0.0.1:0") || pipe(stop_pipe))
        return false;
    cfg = (vram_daemon_config)VRAM_DAEMON_CONFIG_INIT;
    cfg.opts = opts;
    cfg.runner = runner;
    cfg.stop_fd = stop_pipe[0];
    return pthread_create(&daemon_thread, NULL, inproc_daemon_main, &cfg) == 0;
}

static int stop_daemon(void)
{
    void *rc = NULL;
    if (write(stop_pipe[1], "s", 1) != 1)
        return -1;
    pthread_join(daemon_thread, &rc);
    vram_options_free(opts);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    vram__remove_tree(dir);
    return (int)(intptr_t)rc;
}

static vram_client *connect_when_up(void)
{
    vram_client *c = NULL;
    for (int i = 0; i < 250 && vram_client_open(sock_path, &c); i++)
        usleep(20000);
    return c;
}

/* Events until job's state is `state` (each one checked to be job's),
 * at most 200 of them; how many came, or -1 on one of another job's or
 * a wait of 10 s with none. */
static int events_until(vram_client *watch, vram_client *ask, uint64_t job, const char *state)
{
    for (int n = 1; n <= 200; n++) {
        uint64_t id = 0;
        if (vram_client_next_event(watch, 10000, &id) || id != job)
            return -1;
        vram_job_list *l = NULL;
        bool there = vram_client_job(ask, job, &l) == 0 && l->count == 1 && !strcmp(l->jobs[0].state, state);
        vram_job_list_free(l);
        if (there)
            return n;
    }
    return -1;
}

TEST(a_subscriber_hears_each_change_of_a_job)
{
    if (!getenv("VRAM_BUILD"))
        TEST_SKIP("needs VRAM_BUILD (run through tests/run.sh) for the vram runner");
    CHECK(start_daemon());
    vram_client *watch = connect_when_up(), *other = NULL, *ask = NULL;
    CHECK_MSG(watch, "the daemon did not come up: %s", vram_last_error());
    CHECK_OK(vram_client_open(sock_path, &other));     /* not subscribed */
    CHECK_OK(vram_client_open(sock_path, &ask));
    CHECK_OK(vram_client_subscribe(watch));

    uint64_t id = 0;
    CHECK_EQ(vram_client_next_event(watch, 0, &id), VRAM_ETIMEDOUT);   /* nothing changed yet */

    const char *argv[] = { "sleep", "30", NULL };
    static const char *const env[] = { "PATH=/usr/bin:/bin", NULL };
    vram_submit s = { .argv = argv, .vram_bytes = 1ull << 30, .device = -1, .cwd = "/tmp", .env = env };
    uint64_t job = 0;
    CHECK_OK(vram_client_submit(ask, &s, &job));
    CHECK(events_until(watch, ask, job, "running") > 0);

    /* A request on the subscribed connection is answered among the events. */
    vram_job_list *l = NULL;
    CHECK_OK(vram_client_job(watch, job, &l));
    CHECK_EQ_U64(l->count, 1);
    CHECK_EQ_U64(l->jobs[0].id, job);
    vram_job_list_free(l);

    CHECK_OK(vram_client_cancel(ask, job));
    CHECK(events_until(watch, ask, job, "canceled") > 0);

    /* The connection that did not subscribe heard none of it. */
    CHECK_EQ(vram_client_next_event(other, 200, &id), VRAM_ETIMEDOUT);
    CHECK_EQ(vram_client_next_event(NULL, 0, &id), VRAM_EINVAL);
    CHECK_EQ(vram_client_subscribe(NULL), VRAM_EINVAL);

    vram_client_close(watch);
    vram_client_close(other);
    vram_client_close(ask);
    CHECK_EQ(stop_daemon(), 0);
}

