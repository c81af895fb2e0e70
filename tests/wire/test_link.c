/* SPDX-License-Identifier: MIT */
/*
 * tests/wire/test_link.c - a daemon job's end when vramd is gone: it is
 * written to the queue, so the next vramd neither loses it nor runs it twice;
 * a job whose command never started goes back to the queue instead.  A
 * rung's request goes on being asked while connections are lost.
 */
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "wire/queue.h"
#include "wire/link.h"

static char path[96];

/* A queue holding one job, moved to running as a runner's claim moves it. */
static uint64_t running_job(void)
{
    snprintf(path, sizeof(path), "/tmp/vram-admit-%d-%ld.db", (int)getpid(), (long)random());
    vram__queue *q = NULL;
    if (vram__queue_open(path, &q))
        return 0;
    vram__job j;
    memset(&j, 0, sizeof(j));
    j.argv_json = "[\"true\"]";
    j.cwd = "/tmp";
    j.vram_bytes = 1 << 30;
    j.device_pref = -1;
    vram__job start = { .device = 0, .lease_bytes = 1 << 30 };
    vram__job claim = { .device = -1, .runner_pid = (uint32_t)getpid() };
    int rc = vram__queue_add(q, &j, 1);
    if (!rc)
        rc = vram__queue_move(q, j.id, VRAM__JOB_QUEUED, VRAM__JOB_STARTING, &start);
    if (!rc)
        rc = vram__queue_move(q, j.id, VRAM__JOB_STARTING, VRAM__JOB_RUNNING, &claim);
    vram__queue_close(q);
    return rc ? 0 : j.id;
}

/* The link of a daemon job whose daemon has gone away. */
static void orphaned_link(vram__link *l, uint64_t job)
{
    memset(l, 0, sizeof(*l));
    l->job = job;
    vram__strlcpy(l->db_path, path, sizeof(l->db_path));
}

static vram__job row(uint64_t id)
{
    vram__job got;
    memset(&got, 0, sizeof(got));
    vram__queue *q = NULL;
    if (!vram__queue_open(path, &q))
        vram__queue_get(q, id, &got);
    vram__queue_close(q);
    return got;
}

TEST(an_end_without_a_daemon_goes_to_the_queue)
{
    uint64_t id = running_job();
    CHECK(id);
    vram__link l;
    orphaned_link(&l, id);
    vram__link_ended(&l, 3, "failed", 5 << 20, true, NULL);
    vram__job got = row(id);
    CHECK_EQ(got.state, VRAM__JOB_FAILED);
    CHECK_EQ(got.exit_status, 3);
    CHECK_STR_EQ(got.outcome, "failed");
    CHECK_EQ_U64(got.peak_bytes, 5 << 20);
    vram__job_clear(&got);
    unlink(path);
}

TEST(a_job_that_never_started_is_queued_again)
{
    /* The runner claimed the job, then vramd died before the command ran
     * (kill -9 of the daemon): it must run later, not end as failed. */
    uint64_t id = running_job();
    CHECK(id);
    vram__link l;
    orphaned_link(&l, id);
    vram__link_ended(&l, 127, "not-started", 0, false, NULL);
    vram__job got = row(id);
    CHECK_EQ(got.state, VRAM__JOB_QUEUED);
    CHECK_EQ(got.attempts, 1);
    CHECK_EQ(got.runner_pid, 0);
    CHECK_CONTAINS(got.note, "queued again");
    vram__job_clear(&got);
    unlink(path);
}

/* A runner that may not write the store (a root vramd's, as the job's
 * submitter) leaves the end in its end file; vramd reads it as a file of
 * the job's owner only. */
TEST(an_end_the_store_refuses_goes_to_the_end_file)
{
    char dir[96], end[160], other[160];
    snprintf(dir, sizeof(dir), "/tmp/vram-end-%d-%ld", (int)getpid(), (long)random());
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(end, sizeof(end), "%s/7.end", dir);
    vram__link l;
    memset(&l, 0, sizeof(l));
    l.job = 7;
    snprintf(l.db_path, sizeof(l.db_path), "%s/no/such/folder/queue.db", dir);
    vram__strlcpy(l.end_path, end, sizeof(l.end_path));
    vram__link_ended(&l, 3, "failed", 5 << 20, true, NULL);
    vram__end e;
    CHECK_OK(vram__end_read(end, (uint32_t)getuid(), &e));
    CHECK_EQ_U64(e.job, 7);
    CHECK_EQ(e.exit_status, 3);
    CHECK_STR_EQ(e.outcome, "failed");
    CHECK_EQ_U64(e.peak, 5 << 20);
    CHECK(e.ran);
    struct stat st;
    CHECK(stat(end, &st) == 0 && (st.st_mode & 077) == 0);
    /* Another owner's file, a link, a forged line: refused. */
    CHECK_ERR(vram__end_read(end, (uint32_t)getuid() + 1, &e), VRAM_EPERM);
    snprintf(other, sizeof(other), "%s/8.end", dir);
    CHECK(symlink(end, other) == 0);
    CHECK_ERR(vram__end_read(other, (uint32_t)getuid(), &e), VRAM_EPERM);
    unlink(other);
    FILE *f = fopen(other, "w");
    CHECK(f != NULL);
    fputs("{\"job\":8,\"exit_status\":0,\"outcome\":\"ok\\u001b[2J\",\"peak\":0,\"ran\":true}\n", f);
    fclose(f);
    CHECK_ERR(vram__end_read(other, (uint32_t)getuid(), &e), VRAM_EPARSE);
    CHECK_ERR(vram__end_read("/nonexistent/9.end", (uint32_t)getuid(), &e), VRAM_ENOENT);
    /* A job that never started says so: the next vramd queues it again. */
    vram__link_ended(&l, 127, "not-started", 0, false, NULL);
    CHECK_OK(vram__end_read(end, (uint32_t)getuid(), &e));
    CHECK(!e.ran);
    unlink(other);
    unlink(end);
    rmdir(dir);
}

/* A daemon that dies twice: it hangs up on the first two connections after
 * reading their request (the first as vramd killed; the second as a socket
 * that still listened for an instant after it), and answers the third. */
typedef struct flaky_daemon {
    int listen_fd;
    char last_request[256];
    int connections;
} flaky_daemon;

static void *flaky_serve(void *arg)
{
    flaky_daemon *f = arg;
    for (int i = 0; i < 3; i++) {
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        f->connections++;
        size_t n = 0;
        char c;
        while (n + 1 < sizeof(f->last_request) && read(fd, &c, 1) == 1 && c != '\n')
            f->last_request[n++] = c;
        f->last_request[n] = '\0';
        if (i == 2) {
            static const char reply[] = "{\"ok\":true,\"lease\":5,\"device\":0,\"bytes\":1073741824}\n";
            ssize_t w = write(fd, reply, sizeof(reply) - 1);
            (void)w;
        }
        close(fd);
    }
    return NULL;
}

TEST(a_rung_is_asked_again_while_connections_are_lost)
{
    flaky_daemon f = { .listen_fd = socket(AF_UNIX, SOCK_STREAM, 0) };
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "/tmp/vram-flaky-%d.sock", (int)getpid());
    unlink(a.sun_path);
    CHECK(bind(f.listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(f.listen_fd, 4) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, flaky_serve, &f) == 0);
    vram__link l;
    memset(&l, 0, sizeof(l));
    l.job = 9;
    CHECK_OK(vram_client_open(a.sun_path, &l.daemon));
    vram__grant g;
    CHECK_OK(vram__link_rung(&l, 1ull << 30, &g));
    CHECK_EQ_U64(g.lease, 5);
    CHECK_EQ(f.connections, 3);
    CHECK_CONTAINS(f.last_request, "\"op\":\"job-rung\",\"job\":9");
    pthread_join(t, NULL);
    vram_client_close(l.daemon);
    close(f.listen_fd);
    unlink(a.sun_path);
}
