/* SPDX-License-Identifier: MIT */
/*
 * tests/wire/test_queue.c - the durable queue: batches, compare-and-set
 * moves, and what survives a reopen.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
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

/* A runner that claimed its job ahead gets it in one write: queued to
 * running, with what the start sets (device, lease, runner, its start, one
 * attempt more) and the claim's state; a second such move finds the job no
 * longer queued. */
TEST(queued_to_running_is_a_start_and_its_claim)
{
    vram__queue *q = fresh();
    vram__job j = new_job("[\"x\"]");
    CHECK_OK(vram__queue_add(q, &j, 1));
    int changes = sqlite3_total_changes(vram__queue_db(q));
    vram__job f = { .device = 1, .lease_bytes = 5ull << 30, .runner_pid = 4242, .runner_start = 777 };
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_QUEUED, VRAM__JOB_RUNNING, &f));
    CHECK_EQ(sqlite3_total_changes(vram__queue_db(q)) - changes, 1);
    vram__job got;
    CHECK_OK(vram__queue_get(q, j.id, &got));
    CHECK_EQ(got.state, VRAM__JOB_RUNNING);
    CHECK_EQ(got.device, 1);
    CHECK_EQ_U64(got.lease_bytes, 5ull << 30);
    CHECK_EQ(got.runner_pid, 4242u);
    CHECK_EQ_U64(got.runner_start, 777);
    CHECK_EQ(got.attempts, 1);
    CHECK(got.started_ms > 0);
    vram__job_clear(&got);
    CHECK_ERR(vram__queue_move(q, j.id, VRAM__JOB_QUEUED, VRAM__JOB_RUNNING, &f), VRAM_EAGAIN);
    vram__clear_error();
    vram__queue_close(q);
    unlink(path);
}

/* Runs of the statements the connection keeps (alive after each call), and
 * how many there are. */
static uint64_t kept_runs(vram__queue *q, int *n, int *reprepared)
{
    uint64_t runs = 0;
    *n = *reprepared = 0;
    for (sqlite3_stmt *st = sqlite3_next_stmt(vram__queue_db(q), NULL); st;
         st = sqlite3_next_stmt(vram__queue_db(q), st), ++*n) {
        runs += (uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_RUN, 0);
        *reprepared += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_REPREPARE, 0);
    }
    return runs;
}

/* The hot paths (a move, an update, a read of one job, a key lookup) parse
 * their SQL once: 1,000 rounds of them leave the same statements alive, each
 * run 1,000 times more, and none prepared again. */
TEST(hot_statements_are_prepared_once)
{
    vram__queue *q = fresh();
    CHECK(q);
    enum { ROUNDS = 1000 };
    vram__job jobs[ROUNDS + 1];
    for (int i = 0; i <= ROUNDS; i++)
        jobs[i] = new_job("[\"a\"]");
    CHECK_OK(vram__queue_add(q, jobs, ROUNDS + 1));
    uint64_t had;
    vram__job got, f = { .device = 0, .lease_bytes = 1 }, claim = { .device = -1, .runner_pid = 7 };
    vram__job upd = { .device = -1, .peak_bytes = 3 }, end = { .device = -1 };
    snprintf(end.outcome, sizeof(end.outcome), "ok");
    int n0 = 0, n1 = 0, re0 = 0, re1 = 0;
    uint64_t runs0 = 0;
    for (int i = 0; i <= ROUNDS; i++) {
        if (i == 1)                 /* every statement prepared once by now */
            runs0 = kept_runs(q, &n0, &re0);
        uint64_t id = jobs[i].id;
        CHECK_OK(vram__queue_move(q, id, VRAM__JOB_QUEUED, VRAM__JOB_STARTING, &f));
        CHECK_OK(vram__queue_move(q, id, VRAM__JOB_STARTING, VRAM__JOB_RUNNING, &claim));
        CHECK_OK(vram__queue_update(q, id, VRAM__JOB_RUNNING, &upd));
        CHECK_OK(vram__queue_move(q, id, VRAM__JOB_RUNNING, VRAM__JOB_SUCCEEDED, &end));
        CHECK_OK(vram__queue_get(q, id, &got));
        CHECK_EQ(got.state, VRAM__JOB_SUCCEEDED);
        vram__job_clear(&got);
        CHECK_OK(vram__queue_find_key(q, 0, "no-such-key", &had));
        CHECK_EQ_U64(had, 0);
    }
    uint64_t runs1 = kept_runs(q, &n1, &re1);
    CHECK_EQ(n1, n0);
    CHECK(n0 >= 6);                 /* the four moves, the read and the lookup */
    CHECK_EQ_U64(runs1 - runs0, 6 * ROUNDS);
    CHECK_EQ(re1, re0);             /* nor parsed again behind our back (an expired statement) */
    /* A kept statement holds no read transaction open between calls. */
    for (sqlite3_stmt *st = sqlite3_next_stmt(vram__queue_db(q), NULL); st;
         st = sqlite3_next_stmt(vram__queue_db(q), st))
        CHECK(!sqlite3_stmt_busy(st));
    vram__queue_close(q);
    unlink(path);
}

/* One submit alone is one statement, its own transaction (no BEGIN and
 * COMMIT around it), committed when it returns; a batch is one
 * transaction around its rows.  Counted in statement runs. */
TEST(one_row_is_its_own_transaction)
{
    vram__queue *q = fresh();
    CHECK(q);
    vram__job first = new_job("[\"a\"]");
    CHECK_OK(vram__queue_add(q, &first, 1));    /* the statements prepared */
    int n, re;
    uint64_t runs0 = kept_runs(q, &n, &re);
    vram__job one = new_job("[\"b\"]");
    CHECK_OK(vram__queue_add(q, &one, 1));
    CHECK_EQ_U64(kept_runs(q, &n, &re) - runs0, 1);
    CHECK_EQ_U64(one.id, first.id + 1);
    CHECK(sqlite3_get_autocommit(vram__queue_db(q)));
    sqlite3 *other;                 /* committed: another connection sees it */
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(other, "SELECT count(*) FROM jobs WHERE argv = '[\"b\"]'", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    /* Refused (another writer holds the lock): no transaction left open,
     * and the next submit goes in. */
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_busy_timeout(vram__queue_db(q), 1);
    vram__job refused = new_job("[\"c\"]");
    CHECK(vram__queue_add(q, &refused, 1) != 0);
    CHECK_EQ_U64(refused.id, 0);
    CHECK(sqlite3_get_autocommit(vram__queue_db(q)));
    CHECK(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(other);
    vram__clear_error();
    vram__job two[2] = { new_job("[\"d\"]"), new_job("[\"e\"]") };
    runs0 = kept_runs(q, &n, &re);
    CHECK_OK(vram__queue_add(q, two, 2));
    CHECK_EQ_U64(kept_runs(q, &n, &re) - runs0, 4);    /* BEGIN, two rows, COMMIT */
    CHECK_EQ_U64(two[0].id, one.id + 1);
    vram__queue_close(q);
    unlink(path);
}

TEST(state_names)
{
    CHECK_STR_EQ(vram__job_state_name(VRAM__JOB_RUNNING), "running");
    CHECK_EQ(vram__job_state_parse("canceled"), VRAM__JOB_CANCELED);
    CHECK_EQ(vram__job_state_parse("zombie"), -1);
}

/* A job's budget and tier, sized once at submit, are stored with it. */
TEST(budget_and_tier_are_kept)
{
    vram__queue *q = fresh();
    CHECK(q);
    vram__job j = new_job("[\"a\"]");
    j.budget_bytes = 5ull << 30;
    snprintf(j.tier, sizeof(j.tier), "quality");
    CHECK_OK(vram__queue_add(q, &j, 1));
    vram__job got;
    CHECK_OK(vram__queue_get(q, j.id, &got));
    CHECK_EQ_U64(got.budget_bytes, 5ull << 30);
    CHECK_STR_EQ(got.tier, "quality");
    vram__job_clear(&got);
    vram__queue_close(q);
    unlink(path);
}

/* A queue written by a vramd from before budgets were stored opens, its
 * jobs with no budget (sized again when they are recovered). */
TEST(an_older_queue_gains_the_new_columns)
{
    snprintf(path, sizeof(path), "/tmp/vram-queue-old-%d-%ld.db", (int)getpid(), (long)random());
    static const char old_schema[] =
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, state INTEGER NOT NULL,"
        " argv TEXT NOT NULL, env TEXT NOT NULL, cwd TEXT NOT NULL, name TEXT NOT NULL,"
        " model TEXT NOT NULL, settings TEXT NOT NULL, ladder TEXT NOT NULL,"
        " priority INTEGER NOT NULL, vram_bytes INTEGER NOT NULL, device_pref INTEGER NOT NULL,"
        " owner_uid INTEGER NOT NULL, submitted_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL DEFAULT 0,"
        " ended_ms INTEGER NOT NULL DEFAULT 0, device INTEGER NOT NULL DEFAULT -1,"
        " lease_bytes INTEGER NOT NULL DEFAULT 0, runner_pid INTEGER NOT NULL DEFAULT 0,"
        " runner_start INTEGER NOT NULL DEFAULT 0, job_pgid INTEGER NOT NULL DEFAULT 0,"
        " attempts INTEGER NOT NULL DEFAULT 0, exit_status INTEGER NOT NULL DEFAULT 0,"
        " outcome TEXT NOT NULL DEFAULT '', peak_bytes INTEGER NOT NULL DEFAULT 0,"
        " note TEXT NOT NULL DEFAULT '');"
        "INSERT INTO jobs(state, argv, env, cwd, name, model, settings, ladder, priority, vram_bytes,"
        " device_pref, owner_uid, submitted_ms) VALUES(0, '[\"a\"]', '{}', '/', '', '', '{}', '', 0, 1024, -1, 0, 1);";
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, old_schema, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    vram__queue *q = NULL;
    CHECK_OK(vram__queue_open(path, &q));
    vram__job got;
    CHECK_OK(vram__queue_get(q, 1, &got));
    CHECK_EQ_U64(got.vram_bytes, 1024);
    CHECK_EQ_U64(got.budget_bytes, 0);
    CHECK_STR_EQ(got.tier, "");
    vram__job_clear(&got);
    vram__job j = new_job("[\"b\"]");
    j.budget_bytes = 7;
    CHECK_OK(vram__queue_add(q, &j, 1));
    CHECK_OK(vram__queue_get(q, j.id, &got));
    CHECK_EQ_U64(got.budget_bytes, 7);
    vram__job_clear(&got);
    vram__queue_close(q);
    unlink(path);
}

/* Frames in the queue's write-ahead log, after a checkpoint of them all
 * (the next commit starts the log again from its head). */
static int log_frames(vram__queue *q)
{
    sqlite3_stmt *st = NULL;
    int frames = -1;
    if (sqlite3_prepare_v2(vram__queue_db(q), "PRAGMA wal_checkpoint(PASSIVE)", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0 &&
        sqlite3_column_int(st, 1) == sqlite3_column_int(st, 2))
        frames = sqlite3_column_int(st, 1);
    sqlite3_finalize(st);
    return frames;
}

static off_t file_size(const char *suffix)
{
    char p[128];
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* With its fsyncs the caller's, the queue says which each commit owes:
 * a submit and a job put back in the queue one before anyone is told
 * (unsynced), a job's end one soon (lazy), its steps between none.  Without
 * (the runner's own writes of an end), an end is fsync'ed as it commits. */
TEST(each_commit_says_which_fsync_it_owes)
{
    vram__queue *q = fresh();
    CHECK(q);
    vram__job plain = new_job("[\"p\"]");
    CHECK_OK(vram__queue_add(q, &plain, 1));
    vram__job end = { .device = -1, .exit_status = 0 };
    CHECK_OK(vram__queue_move(q, plain.id, VRAM__JOB_QUEUED, VRAM__JOB_SUCCEEDED, &end));
    CHECK(!vram__queue_take_unsynced(q));   /* not deferred: each fsync'ed as it committed */
    CHECK(!vram__queue_take_lazy(q));
    CHECK_OK(vram__queue_defer_sync(q));
    vram__job j = new_job("[\"a\"]");
    CHECK_OK(vram__queue_add(q, &j, 1));
    CHECK(vram__queue_take_unsynced(q));
    CHECK(!vram__queue_take_lazy(q));
    vram__job f = { .device = 0, .lease_bytes = 1 };
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_QUEUED, VRAM__JOB_STARTING, &f));
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_STARTING, VRAM__JOB_RUNNING, &f));
    CHECK(!vram__queue_take_unsynced(q));   /* its steps ride on the next fsync */
    CHECK(!vram__queue_take_lazy(q));
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_RUNNING, VRAM__JOB_QUEUED, &f));
    CHECK(vram__queue_take_unsynced(q));    /* put back: as a submit */
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_QUEUED, VRAM__JOB_RUNNING, &f));
    CHECK_OK(vram__queue_move(q, j.id, VRAM__JOB_RUNNING, VRAM__JOB_FAILED, &end));
    CHECK(!vram__queue_take_unsynced(q));
    CHECK(vram__queue_take_lazy(q));        /* its end: soon */
    CHECK(!vram__queue_take_lazy(q));       /* and taken once */
    vram__queue_close(q);
    unlink(path);
}

/* A submit writes one page to the log (its row's: no AUTOINCREMENT
 * counter beside it), and a daemon's log is sized once for the thousand
 * pages it holds before a checkpoint, so that commits do not make it
 * longer (each fsync would write the file's size and blocks too). */
TEST(a_submit_writes_one_page_to_a_log_sized_once)
{
    vram__queue *q = fresh();
    CHECK(q);
    CHECK_OK(vram__queue_check(q));
    CHECK_OK(vram__queue_defer_sync(q));
    off_t sized = file_size("-wal");
    CHECK(sized >= 32 + 1000 * (4096 + 24));
    CHECK(log_frames(q) >= 0);
    for (int i = 0; i < 3; i++) {
        vram__job j = new_job("[\"a\"]");
        CHECK_OK(vram__queue_add(q, &j, 1));
        CHECK(vram__queue_take_unsynced(q));    /* its fsync is the caller's */
        CHECK_EQ(log_frames(q), 1);
    }
    vram__job many[200];
    for (int i = 0; i < 200; i++)
        many[i] = new_job("[\"b\"]");
    CHECK_OK(vram__queue_add(q, many, 200));
    CHECK_EQ(many[199].id, many[0].id + 199);
    CHECK_EQ(file_size("-wal"), sized);
    vram__queue_close(q);
    unlink(path);
}

/* What a killed daemon left: the log with its zeros past the last frame,
 * and no shared index.  Opened again, every committed job is there. */
TEST(a_sized_log_recovers_after_a_kill)
{
    vram__queue *q = fresh();
    CHECK(q);
    CHECK_OK(vram__queue_check(q));
    CHECK_OK(vram__queue_defer_sync(q));
    vram__job jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = new_job("[\"k\"]");
        CHECK_OK(vram__queue_add(q, &jobs[i], 1));
    }
    CHECK(fdatasync(vram__queue_log_fd(q)) == 0);
    char copy[160], cmd[512];
    snprintf(copy, sizeof(copy), "%s.killed", path);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && cp '%s-wal' '%s-wal'", path, copy, path, copy);
    CHECK(system(cmd) == 0);
    vram__queue_close(q);
    unlink(path);
    vram__queue *k = NULL;
    CHECK_OK(vram__queue_open(copy, &k));
    int n = 0;
    CHECK_OK(vram__queue_each(k, 1u << VRAM__JOB_QUEUED, count_visit, &n));
    CHECK_EQ(n, 5);
    vram__job next = new_job("[\"after\"]");
    CHECK_OK(vram__queue_add(k, &next, 1));
    CHECK_EQ(next.id, jobs[4].id + 1);
    vram__queue_close(k);
    unlink(copy);
}
