/*
 * tests/runner/test_admit.c - a daemon job's end when vramd is gone: it is
 * written to the queue, so the next vramd neither loses it nor runs it twice;
 * a job whose command never started goes back to the queue instead.
 */
#include <unistd.h>

#include "test.h"
#include "daemon/queue.h"
#include "runner/runner.h"

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

/* The admitter of a daemon job whose daemon has gone away. */
static void orphaned_admitter(vram__admitter *ad, uint64_t job)
{
    memset(ad, 0, sizeof(*ad));
    ad->job = job;
    vram__strlcpy(ad->db_path, path, sizeof(ad->db_path));
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
    vram__admitter ad;
    orphaned_admitter(&ad, id);
    vram__admit_ended(&ad, 3, "failed", 5 << 20, true);
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
    vram__admitter ad;
    orphaned_admitter(&ad, id);
    vram__admit_ended(&ad, 127, "not-started", 0, false);
    vram__job got = row(id);
    CHECK_EQ(got.state, VRAM__JOB_QUEUED);
    CHECK_EQ(got.attempts, 1);
    CHECK_EQ(got.runner_pid, 0);
    CHECK_CONTAINS(got.note, "queued again");
    vram__job_clear(&got);
    unlink(path);
}
