/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_owner_group.c - a job's process group is one its runner
 * started (issue 10).  A runner runs as the job's submitter, who can make
 * it say anything: vramd takes `owner` only for a group led by the runner's
 * own child, never init's or another's.  The runner here is a stand-in
 * script vramd starts in the real one's place; it writes what vramd
 * answered.
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "inproc.h"
#include "core/core.h"

static const char fake_runner[] =
    "#!/usr/bin/python3\n"
    "import json, os, socket, subprocess, sys\n"
    "a = sys.argv[1:]\n"
    "job, path = int(a[a.index('--daemon-job') + 1]), a[a.index('--socket') + 1]\n"
    "s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile('r')\n"
    "def call(req):\n"
    "    s.sendall((json.dumps(req) + '\\n').encode()); return f.readline().strip()\n"
    "got = [call({'op': 'job-claim', 'job': job, 'pid': os.getpid()})]\n"
    "child = subprocess.Popen(['sleep', '30'], process_group=0)\n"
    "got.append(call({'op': 'owner', 'job': job, 'pgid': 1}))\n"
    "got.append(call({'op': 'owner', 'job': job, 'pgid': os.getpgid(0)}))\n"
    "got.append(call({'op': 'owner', 'job': job, 'pgid': child.pid}))\n"
    "child.kill(); child.wait()\n"
    "got.append(call({'op': 'job-ended', 'job': job, 'exit_status': 0, 'outcome': 'ok', 'peak': 0}))\n"
    "here = os.path.dirname(os.path.abspath(__file__))\n"
    "open(os.path.join(here, 'answers.part'), 'w').write('\\n'.join(got) + '\\n')\n"
    "os.rename(os.path.join(here, 'answers.part'), os.path.join(here, 'answers'))\n";

static char dir[64];
static int stop_pipe[2];

TEST(owner_takes_only_a_group_the_runner_started)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        TEST_SKIP("needs /usr/bin/python3 for the stand-in runner");
    snprintf(dir, sizeof(dir), "/tmp/vramd-owner-%d-XXXXXX", (int)getpid());
    CHECK(mkdtemp(dir));
    char sock[160], runner[160], answers[160];
    snprintf(sock, sizeof(sock), "%s/vramd.sock", dir);
    snprintf(runner, sizeof(runner), "%s/runner.py", dir);
    snprintf(answers, sizeof(answers), "%s/answers", dir);
    FILE *f = fopen(runner, "w");
    CHECK(f != NULL);
    fputs(fake_runner, f);
    fclose(f);
    chmod(runner, 0700);
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_OK(inproc_options(o, dir, sock, "127.0.0.1:0"));
    CHECK(pipe(stop_pipe) == 0);
    vram_daemon_config cfg = { .opts = o, .runner = runner, .stop_fd = stop_pipe[0] };
    pthread_t daemon;
    CHECK(pthread_create(&daemon, NULL, inproc_daemon_main, &cfg) == 0);
    vram_client *c = NULL;
    for (int i = 0; i < 200 && vram_client_open(sock, &c); i++)
        usleep(20000);
    CHECK_MSG(c, "the daemon did not come up: %s", vram_last_error());
    const char *argv[] = { "true", NULL };
    vram_submit s = { .argv = argv, .vram_bytes = 1ull << 30, .device = -1 };
    uint64_t job = 0;
    CHECK_OK(vram_client_submit(c, &s, &job));
    for (int i = 0; i < 300 && access(answers, R_OK) != 0; i++)
        usleep(50000);
    char got[4][512] = { "", "", "", "" };
    f = fopen(answers, "r");
    CHECK_MSG(f != NULL, "the stand-in runner wrote no answers");
    char first[512];
    CHECK(fgets(first, sizeof(first), f) != NULL);
    for (int i = 0; i < 4 && fgets(got[i], sizeof(got[i]), f); i++)
        ;
    fclose(f);
    vram_client_close(c);
    CHECK(write(stop_pipe[1], "s", 1) == 1);
    void *rc;
    pthread_join(daemon, &rc);
    vram_options_free(o);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    CHECK_CONTAINS(first, "\"lease\"");
    CHECK_CONTAINS(got[0], "VRAM_EPERM");          /* init's group */
    CHECK_CONTAINS(got[0], "is not one job");
    CHECK_CONTAINS(got[1], "VRAM_EPERM");          /* the runner's own, not its child's */
    CHECK_CONTAINS(got[2], "\"ok\":true");         /* its child's */
    CHECK_CONTAINS(got[3], "\"ok\":true");
}
