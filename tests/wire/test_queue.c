/*
 * tests/wire/test_queue.c - the durable queue: batches, compare-and-set
 * moves, and what survives a reopen.
 */
#include <unistd.h>

#include "test.h"
#include "wire/queue.h"

static char path[96];

static vram__queue *fresh(void)
{
    snprintf(path, sizeof(path), "/tmp/vram-queue-%d-%ld.db", (int)getpid(), (long)random());
    vram__queue *q = NULL;
    vram__queue_open(path, &q);
    return q;
}

static vram__job new_job(const char *argv)
{
    vram__job j;
    memset(&j, 0, sizeof(j));
    j.argv_json = (char *)argv;
    j.cwd = "/tmp";
    j.vram_bytes = 1 << 30;
    j.device_pref = -1;
    return j;
}

static int count_visit(void *user, const vram__job *j)
{
    (void)j;
    (*(int *)user)++;
    return 0;
}

TEST(batch_submit_and_moves)
{
    vram__queue *q = fresh();
    CHECK(q);
    vram__job jobs[3] = { new_job("[\"a\"]"), new_job("[\"b\"]"), new_job("[\"c\"]") };
    CHECK_OK(vram__queue_add(q, jobs, 3));
    CHECK(jobs[0].id > 0 && jobs[1].id == jobs[0].id + 1 && jobs[2].id == jobs[1].id + 1);

    vram__job f = { .device = 1, .lease_bytes = 3u << 30 };
    CHECK_OK(vram__queue_move(q, jobs[0].id, VRAM__JOB_QUEUED, VRAM__JOB_STARTING, &f));
    CHECK_ERR(vram__queue_move(q, jobs[0].id, VRAM__JOB_QUEUED, VRAM__JOB_STARTING, &f), VRAM_EAGAIN);
    vram__job claim = { .device = -1, .runner_pid = 4242, .runner_start = 99 };
    CHECK_OK(vram__queue_move(q, jobs[0].id, VRAM__JOB_STARTING, VRAM__JOB_RUNNING, &claim));
    /* A second runner cannot claim it: the job runs once. */
    CHECK_ERR(vram__queue_move(q, jobs[0].id, VRAM__JOB_STARTING, VRAM__JOB_RUNNING, &claim), VRAM_EAGAIN);
    vram__job upd = { .device = -1, .job_pgid = 5000, .peak_bytes = 7 };
    CHECK_OK(vram__queue_update(q, jobs[0].id, VRAM__JOB_RUNNING, &upd));
    vram__job end = { .device = -1, .exit_status = 0, .peak_bytes = 5 };
    snprintf(end.outcome, sizeof(end.outcome), "ok");
    CHECK_OK(vram__queue_move(q, jobs[0].id, VRAM__JOB_RUNNING, VRAM__JOB_SUCCEEDED, &end));

    vram__job got;
    CHECK_OK(vram__queue_get(q, jobs[0].id, &got));
    CHECK_EQ(got.state, VRAM__JOB_SUCCEEDED);
    CHECK_EQ(got.device, 1);
    CHECK_EQ_U64(got.lease_bytes, 3ull << 30);
    CHECK_EQ(got.runner_pid, 4242);
    CHECK_EQ(got.job_pgid, 5000);
    CHECK_EQ_U64(got.peak_bytes, 7);           /* the higher peak is kept */
    CHECK_EQ(got.attempts, 1);
    CHECK_STR_EQ(got.outcome, "ok");
    CHECK_STR_EQ(got.argv_json, "[\"a\"]");
    CHECK(got.ended_ms >= got.started_ms && got.started_ms >= got.submitted_ms);
    vram__job_clear(&got);

    CHECK_OK(vram__queue_move(q, jobs[1].id, VRAM__JOB_QUEUED, VRAM__JOB_CANCELED, NULL));
    uint64_t counts[VRAM__JOB_STATE_COUNT];
    CHECK_OK(vram__queue_counts(q, counts));
    CHECK_EQ_U64(counts[VRAM__JOB_QUEUED], 1);
    CHECK_EQ_U64(counts[VRAM__JOB_SUCCEEDED], 1);
    CHECK_EQ_U64(counts[VRAM__JOB_CANCELED], 1);
    CHECK_ERR(vram__queue_get(q, 999, &got), VRAM_ENOENT);
    vram__queue_close(q);

    /* Reopened, everything is still there. */
    CHECK_OK(vram__queue_open(path, &q));
    int n = 0;
    CHECK_OK(vram__queue_each(q, 1u << VRAM__JOB_QUEUED, count_visit, &n));
    CHECK_EQ(n, 1);
    n = 0;
    CHECK_OK(vram__queue_each(q, ~0u, count_visit, &n));
    CHECK_EQ(n, 3);
    vram__queue_close(q);
    unlink(path);
}

TEST(requeue_after_a_lost_runner)
{
    vram__queue *q = fresh();
    vram__job j = new_job("[\"x\"]");
    CHECK_OK(vram__queue_add(q, &j, 1));
    vram__job f = { .device = 0, .lease_bytes = 1 };
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_QUEUED, VRAM__JOB_STARTING, &f));
    vram__job note = { .device = -1 };
    snprintf(note.note, sizeof(note.note), "requeued: its runner never started");
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_STARTING, VRAM__JOB_QUEUED, &note));
    vram__job got;
    CHECK_OK(vram__queue_get(q, j.id, &got));
    CHECK_EQ(got.state, VRAM__JOB_QUEUED);
    CHECK_EQ(got.device, -1);
    CHECK_EQ(got.attempts, 1);
    CHECK_CONTAINS(got.note, "requeued");
    vram__job_clear(&got);
    vram__queue_close(q);
    unlink(path);
}

TEST(state_names)
{
    CHECK_STR_EQ(vram__job_state_name(VRAM__JOB_RUNNING), "running");
    CHECK_EQ(vram__job_state_parse("canceled"), VRAM__JOB_CANCELED);
    CHECK_EQ(vram__job_state_parse("zombie"), -1);
}
