/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_shim_sums.c - /metrics' vram_jobs_shim_used_bytes and
 * vram_jobs_over_budget_bytes, which vramd keeps as running sums (not a
 * walk of every job at each scrape), stay right across a job's usage
 * reports and its end: the used bytes are the last report's while it
 * runs and none once it has ended; the overage is the highest reported
 * and stays while the job is kept.  The runner is a stand-in script vramd
 * starts in the real one's place: it claims its job, reports usage through
 * the runner link (job-progress), reads /metrics after each step and
 * writes what it read.
 */
#define TEST_THREADED 1
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "inproc.h"
#include "core/core.h"

/* %d: the daemon's HTTP port. */
static const char fake_runner[] =
    "#!/usr/bin/python3\n"
    "import json, os, socket, sys, urllib.request\n"
    "a = sys.argv[1:]\n"
    "job, path = int(a[a.index('--daemon-job') + 1]), a[a.index('--socket') + 1]\n"
    "s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile('r')\n"
    "def call(req):\n"
    "    s.sendall((json.dumps(req) + '\\n').encode()); return f.readline().strip()\n"
    "def sums():\n"
    "    m = {}\n"
    "    for line in urllib.request.urlopen('http://127.0.0.1:%d/metrics', timeout=10).read().decode().splitlines():\n"
    "        k = line.split(' ')\n"
    "        if len(k) == 2: m[k[0]] = k[1]\n"
    "    return '%%s %%s' %% (m.get('vram_jobs_shim_used_bytes'), m.get('vram_jobs_over_budget_bytes'))\n"
    "G = 1 << 30\n"
    "got = [call({'op': 'job-claim', 'job': job, 'pid': os.getpid()}), sums()]\n"
    "for used, over in ((3 * G, G), (2 * G, G // 2), (5 * G, 2 * G)):\n"
    "    got.append(call({'op': 'job-progress', 'job': job, 'used': used, 'over': over}))\n"
    "    got.append(sums())\n"
    "got.append(call({'op': 'job-ended', 'job': job, 'exit_status': 0, 'outcome': 'ok', 'peak': 5 * G}))\n"
    "got.append(sums())\n"
    "here = os.path.dirname(os.path.abspath(__file__))\n"
    "open(os.path.join(here, 'answers.part'), 'w').write('\\n'.join(got) + '\\n')\n"
    "os.rename(os.path.join(here, 'answers.part'), os.path.join(here, 'answers'))\n";

static char dir[64];
static int stop_pipe[2];

TEST(metrics_sums_follow_usage_reports_and_the_end)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        TEST_SKIP("needs /usr/bin/python3 for the stand-in runner");
    int port = inproc_free_port();
    CHECK(port > 0);
    snprintf(dir, sizeof(dir), "/tmp/vramd-sums-%d-XXXXXX", (int)getpid());
    CHECK(mkdtemp(dir));
    char sock[160], runner[160], answers[160], http[64];
    snprintf(sock, sizeof(sock), "%s/vramd.sock", dir);
    snprintf(runner, sizeof(runner), "%s/runner.py", dir);
    snprintf(answers, sizeof(answers), "%s/answers", dir);
    snprintf(http, sizeof(http), "127.0.0.1:%d", port);
    FILE *f = fopen(runner, "w");
    CHECK(f != NULL);
    fprintf(f, fake_runner, port);
    fclose(f);
    chmod(runner, 0700);
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(inproc_options(o, dir, sock, http));
    CHECK(pipe(stop_pipe) == 0);
    vram_daemon_config cfg = { .opts = o, .runner = runner, .stop_fd = stop_pipe[0] };
    pthread_t daemon;
    CHECK(pthread_create(&daemon, NULL, inproc_daemon_main, &cfg) == 0);
    vram_client *c = NULL;
    for (int i = 0; i < 200 && vram_client_open(sock, &c); i++)
        usleep(20000);
    CHECK_MSG(c, "the daemon did not come up: %s", vram_last_error());
    const char *argv[] = { "true", NULL };
    vram_submit s = { .argv = argv, .vram_bytes = 6ull << 30, .device = -1 };
    uint64_t job = 0;
    CHECK_OK(vram_client_submit(c, &s, &job));
    for (int i = 0; i < 300 && access(answers, R_OK) != 0; i++)
        usleep(50000);
    char got[10][512];
    int n = 0;
    f = fopen(answers, "r");
    if (f) {
        while (n < 10 && fgets(got[n], sizeof(got[n]), f))
            got[n][strcspn(got[n], "\n")] = '\0', n++;
        fclose(f);
    }
    vram_client_close(c);
    CHECK(write(stop_pipe[1], "s", 1) == 1);
    void *rc;
    pthread_join(daemon, &rc);
    vram_options_free(o);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    CHECK_MSG(n == 10, "the stand-in runner wrote %d of its 10 answers", n);
    CHECK_CONTAINS(got[0], "\"lease\"");
    CHECK_STR_EQ(got[1], "0 0");                        /* claimed, nothing reported */
    CHECK_CONTAINS(got[2], "\"ok\":true");
    CHECK_STR_EQ(got[3], "3221225472 1073741824");      /* 3 GiB used, 1 GiB over */
    CHECK_CONTAINS(got[4], "\"ok\":true");
    CHECK_STR_EQ(got[5], "2147483648 1073741824");      /* less used; the higher overage stands */
    CHECK_CONTAINS(got[6], "\"ok\":true");
    CHECK_STR_EQ(got[7], "5368709120 2147483648");
    CHECK_CONTAINS(got[8], "\"ok\":true");
    CHECK_STR_EQ(got[9], "0 2147483648");               /* ended: nothing used, its overage kept */
}
