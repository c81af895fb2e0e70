/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_daemon_threads.c - vramd with everything at once, for
 * ThreadSanitizer: the daemon runs on a thread of this test while client
 * threads submit, list and cancel over the socket and HTTP threads read the
 * dashboard's API and cancel queued jobs through it (the page's cancel
 * writes a job's end on an HTTP thread), as jobs start and end under real
 * runners.
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "inproc.h"
#include "core/core.h"
#include "httpc.h"

/* httpc.h offers more than this test needs. */
__attribute__((unused)) static const void *unused_httpc = (const void *)http_header;

#define CLIENTS 3
#define JOBS_EACH 12

static char dir[64], sock_path[128];
static unsigned http_port;
static int stop_pipe[2];
static volatile int done_reading;

static void *client_main(void *arg)
{
    intptr_t failures = 0;
    vram_client *c;
    if (vram_client_open(sock_path, &c))
        return (void *)(intptr_t)1000;
    const char *argv[] = { "true", NULL };
    for (int i = 0; i < JOBS_EACH; i++) {
        vram_submit s = { .argv = argv, .vram_bytes = (uint64_t)(1 + i % 3) << 30, .device = -1 };
        uint64_t job;
        if (vram_client_submit(c, &s, &job))
            failures++;
        vram_job_list *l;
        if (vram_client_jobs(c, NULL, 0, &l) == 0)
            vram_job_list_free(l);
        else
            failures++;
        if (i % 5 == (int)(intptr_t)arg)
            vram_client_cancel(c, job);     /* may have ended already: either answer is fine */
    }
    vram_client_close(c);
    return (void *)failures;
}

static char first_http_failure[256];     /* what went wrong first, for the message */

static void *http_main(void *arg)
{
    (void)arg;
    intptr_t bad = 0;
    static const char *paths[] = { "/api/jobs", "/api/status", "/api/events", "/metrics" };
    for (int i = 0; !__atomic_load_n(&done_reading, __ATOMIC_ACQUIRE); i++) {
        http_reply r;
        memset(&r, 0, sizeof(r));
        uint64_t t0 = vram__now_ms();
        int rc = http_get(http_port, paths[i % 4], &r);
        if (rc || r.status != 200) {
            if (!bad++)
                snprintf(first_http_failure, sizeof(first_http_failure), "GET %s: %s %d after %llu ms: %.80s",
                         paths[i % 4], rc ? "no reply" : "status", r.status,
                         (unsigned long long)(vram__now_ms() - t0), r.body ? r.body : "");
        }
        http_reply_free(&r);
        usleep(10000);
    }
    return (void *)bad;
}

/* The page's cancel of a job still queued (behind one that holds most of
 * the card): its end is written on the HTTP thread, which notes it for the
 * loop's sync (daemon.c) while the loop may be between rounds.  Returns
 * how many jobs it submitted, or -1. */
#define PAGE_CANCELS 8
static void *http_cancel_main(void *arg)
{
    (void)arg;
    char path[160], token[128] = "", auth[200];
    snprintf(path, sizeof(path), "%s/token", dir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(token, sizeof(token), f))
        token[0] = '\0';
    if (f)
        fclose(f);
    token[strcspn(token, "\r\n")] = '\0';
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    vram_client *c;
    if (vram_client_open(sock_path, &c))
        return (void *)(intptr_t)-1;
    const char *hold[] = { "sleep", "1", NULL }, *quick[] = { "true", NULL };
    vram_submit s = { .argv = hold, .vram_bytes = (uint64_t)20 << 30, .device = 0 };
    uint64_t job;
    intptr_t submitted = 0, bad = 0;
    if (vram_client_submit(c, &s, &job) == 0)
        submitted++;
    s.argv = quick;
    for (int i = 0; i < PAGE_CANCELS; i++) {
        if (vram_client_submit(c, &s, &job)) {
            bad++;
            continue;
        }
        submitted++;
        http_reply r;
        memset(&r, 0, sizeof(r));
        snprintf(path, sizeof(path), "/api/jobs/%llu/cancel", (unsigned long long)job);
        if (http_call(http_port, "POST", path, auth, NULL, &r) || r.status != 200)
            bad++;
        http_reply_free(&r);
        usleep(20000);
    }
    vram_client_close(c);
    return (void *)(bad ? -1 : submitted);
}

TEST(daemon_under_concurrent_clients_and_dashboard)
{
    char runner[4200];
    TEST_BUILD_PATH(runner, "bin/vram");
    snprintf(dir, sizeof(dir), "/tmp/vramd-threads-%d-XXXXXX", (int)getpid());
    CHECK(mkdtemp(dir));
    char http[64];
    snprintf(sock_path, sizeof(sock_path), "%s/vramd.sock", dir);
    http_port = (unsigned)inproc_free_port();
    snprintf(http, sizeof(http), "127.0.0.1:%u", http_port);
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(inproc_options(o, dir, sock_path, http));
    CHECK_OK(vram_options_set(o, "interval", "50ms", NULL));
    CHECK(pipe(stop_pipe) == 0);
    vram_daemon_config cfg = { .opts = o, .runner = runner, .stop_fd = stop_pipe[0] };
    pthread_t daemon;
    CHECK(pthread_create(&daemon, NULL, inproc_daemon_main, &cfg) == 0);
    vram_client *probe = NULL;
    for (int i = 0; i < 200 && vram_client_open(sock_path, &probe); i++)
        usleep(20000);
    CHECK_MSG(probe, "the daemon did not come up: %s", vram_last_error());
    /* The socket listens before the daemon has opened the rest (its
     * dashboard too); its first answer says all is up. */
    vram_job_list *first = NULL;
    CHECK_OK(vram_client_jobs(probe, NULL, 0, &first));
    vram_job_list_free(first);

    pthread_t clients[CLIENTS], readers[2], canceler;
    for (intptr_t i = 0; i < CLIENTS; i++)
        CHECK(pthread_create(&clients[i], NULL, client_main, (void *)i) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&readers[i], NULL, http_main, NULL) == 0);
    CHECK(pthread_create(&canceler, NULL, http_cancel_main, NULL) == 0);
    intptr_t client_failures = 0, http_failures = 0;
    for (int i = 0; i < CLIENTS; i++) {
        void *r;
        pthread_join(clients[i], &r);
        client_failures += (intptr_t)r;
    }
    /* Every job ends, one way or the other. */
    vram_job_list *l = NULL;
    for (int i = 0; i < 600; i++) {
        vram_job_list_free(l);
        l = NULL;
        if (vram_client_jobs(probe, NULL, 0, &l) == 0 && l->queued + l->starting + l->running == 0)
            break;
        usleep(100000);
    }
    __atomic_store_n(&done_reading, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(readers[i], &r);
        http_failures += (intptr_t)r;
    }
    void *page_jobs;
    pthread_join(canceler, &page_jobs);
    CHECK(l != NULL);
    uint64_t ended = l->succeeded + l->canceled;
    uint64_t active = l->queued + l->starting + l->running, failed = l->failed;
    vram_job_list_free(l);
    vram_client_close(probe);
    CHECK(write(stop_pipe[1], "s", 1) == 1);
    void *rc;
    pthread_join(daemon, &rc);
    vram_options_free(o);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    CHECK_EQ((intptr_t)rc, 0);
    CHECK_EQ(client_failures, 0);
    CHECK_MSG(http_failures == 0, "%ld of the dashboard's replies failed; the first: %s", (long)http_failures,
              first_http_failure);
    CHECK_EQ(active, 0);
    CHECK_EQ(failed, 0);
    CHECK_EQ((intptr_t)page_jobs, 1 + PAGE_CANCELS);
    CHECK_EQ(ended, CLIENTS * JOBS_EACH + 1 + PAGE_CANCELS);
}
