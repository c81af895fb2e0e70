/* SPDX-License-Identifier: MIT */
/*
 * tests/runner/test_history.c - the run history: one transaction per run,
 * listing, reports, a locked database, a full disk, and a new history
 * opened by several programs at once.
 */
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "runner/runner.h"

#define GiB (1024ull * 1024 * 1024)

static char dir[64];

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/vram-history-%d-XXXXXX", (int)getpid());
    mkdtemp(dir);
}

static vram_run_record sample_run(const char *job, unsigned attempt, const char *outcome,
                                  vram_point *pts, size_t n)
{
    vram_run_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.job, sizeof(r.job), "%s", job);
    r.attempt = attempt;
    r.started_unix_ms = 1795000000000ull + attempt;
    r.duration_ms = 4000;
    r.command = "python gen.py --size 720p & <tag>";
    r.profile = "wan2.2-ti2v-5b";
    r.settings = "{\"resolution\":\"720p\",\"steps\":30}";
    r.device = 0;
    r.estimate_bytes = 10 * GiB;
    r.peak_bytes = 9 * GiB;
    r.outcome = outcome;
    r.exit_status = strcmp(outcome, "ok") ? 1 : 0;
    r.oom_tried_bytes = strcmp(outcome, "oom") ? 0 : 2 * GiB;
    r.note = "";
    r.timeline = pts;
    r.ntimeline = n;
    return r;
}

TEST(records_lists_and_draws)
{
    fresh_dir();
    char path[128];
    snprintf(path, sizeof(path), "%s/nested/dir/history.db", dir);
    vram_history *h;
    CHECK_OK(vram_history_open(path, &h));
    CHECK_STR_EQ(vram_history_path(h), path);
    vram_point pts[50];
    for (int i = 0; i < 50; i++)
        pts[i] = (vram_point){ (uint64_t)i * 100, (uint64_t)(i < 25 ? i : 50 - i) * (GiB / 4) };
    vram_run_record a = sample_run("job-1", 1, "oom", pts, 50);
    vram_run_record b = sample_run("job-1", 2, "ok", pts, 30);
    vram_run_record c = sample_run("job-2", 1, "ok", NULL, 0);
    CHECK_OK(vram_history_add(h, &a));
    CHECK_OK(vram_history_add(h, &b));
    CHECK_OK(vram_history_add(h, &c));
    CHECK(a.id > 0 && b.id == a.id + 1 && c.id == b.id + 1);

    char *json;
    CHECK_OK(vram_history_json(h, 0, NULL, &json));
    CHECK(strstr(json, "\"job\":\"job-2\"") < strstr(json, "\"job\":\"job-1\""));  /* newest first */
    CHECK_CONTAINS(json, "\"settings\":{\"resolution\":\"720p\",\"steps\":30}");
    CHECK_CONTAINS(json, "\"outcome\":\"oom\"");
    CHECK_CONTAINS(json, "\"oom_tried_bytes\":2147483648");
    vram_free(json);
    CHECK_OK(vram_history_json(h, 0, "job-1", &json));
    CHECK(!strstr(json, "job-2"));
    vram_free(json);

    int64_t ids[] = { a.id, b.id };
    char *svg;
    CHECK_OK(vram_history_report_svg(h, ids, 2, &svg));
    CHECK_CONTAINS(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    CHECK_CONTAINS(svg, "GPU memory (GiB)");
    CHECK_CONTAINS(svg, "&amp; &lt;tag&gt;");                /* the command, escaped */
    const char *first = strstr(svg, "<polyline"), *second = first ? strstr(first + 1, "<polyline") : NULL;
    CHECK(first && second && !strstr(second + 1, "<polyline"));
    vram_free(svg);
    int64_t missing[] = { a.id, 999 };
    CHECK_ERR(vram_history_report_svg(h, missing, 2, &svg), VRAM_ENOENT);
    CHECK_CONTAINS(vram_last_error(), "no run 999");
    CHECK_ERR(vram_history_report_svg(h, ids, 0, &svg), VRAM_EINVAL);
    vram_history_close(h);

    /* It is all still there after reopening. */
    CHECK_OK(vram_history_open(path, &h));
    CHECK_OK(vram_history_json(h, 1, NULL, &json));
    CHECK_CONTAINS(json, "job-2");
    CHECK(!strstr(json, "job-1"));                           /* limit 1 */
    vram_free(json);
    vram_history_close(h);
}

TEST(a_locked_database_is_reported_and_nothing_is_half_written)
{
    fresh_dir();
    char path[128];
    snprintf(path, sizeof(path), "%s/h.db", dir);
    vram_history *h;
    CHECK_OK(vram_history_open(path, &h));
    sqlite3 *other;
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
    vram_point pts[3] = { { 0, 1 }, { 1, 2 }, { 2, 3 } };
    vram_run_record r = sample_run("locked", 1, "ok", pts, 3);
    CHECK_ERR(vram_history_add(h, &r), VRAM_EBUSY);
    CHECK_CONTAINS(vram_last_error(), "locked by another program");
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    CHECK_OK(vram_history_add(h, &r));                       /* and works again after */
    vram_history_close(h);
}

TEST(a_full_disk_is_reported_and_the_transaction_rolled_back)
{
    fresh_dir();
    char path[128];
    snprintf(path, sizeof(path), "%s/h.db", dir);
    vram_history *h;
    CHECK_OK(vram_history_open(path, &h));
    static vram_point pts[20000];
    for (int i = 0; i < 20000; i++)
        pts[i] = (vram_point){ (uint64_t)i, (uint64_t)i * 12345 };
    CHECK_OK(vram__history_limit_pages(h, 12));
    vram_run_record r = sample_run("big", 1, "ok", pts, 20000);
    CHECK_ERR(vram_history_add(h, &r), VRAM_ENOSPC);
    CHECK_CONTAINS(vram_last_error(), "is full");
    char *json;
    CHECK_OK(vram_history_json(h, 0, NULL, &json));
    CHECK_STR_EQ(json, "[]");                                /* no run without its samples */
    vram_free(json);
    vram_history_close(h);
}

/* vramd starts a batch's runners together, and each opens the history
 * first: on a new history they meet in its switch to WAL and its schema.
 * Every one must open it (SQLite answers some of those meetings with BUSY
 * at once, not after the busy timeout; before this was handled, about one
 * round in thirty lost a runner's record). */
TEST(openers_at_once_all_open_a_new_history)
{
    fresh_dir();
    int failed = 0;
    for (int round = 0; round < 60; round++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/new%d.db", dir, round);
        for (int k = 0; k < 6; k++) {
            pid_t pid = fork();
            if (pid == 0) {
                vram_history *h;
                int rc = vram_history_open(path, &h);
                if (rc)
                    fprintf(stderr, "# round %d: %s\n", round, vram_last_error());
                vram_history_close(h);
                _exit(rc ? 1 : 0);
            }
            CHECK(pid > 0);
        }
        int status;
        while (wait(&status) > 0)
            if (!WIFEXITED(status) || WEXITSTATUS(status))
                failed++;
        vram_history *h;
        CHECK_OK(vram_history_open(path, &h));
        vram_run_record r = sample_run("after", 1, "ok", NULL, 0);
        CHECK_OK(vram_history_add(h, &r));
        vram_history_close(h);
    }
    CHECK_EQ(failed, 0);
}

TEST(unwritable_place)
{
    vram_history *h;
    int rc = vram_history_open("/proc/vram-cannot/history.db", &h);
    CHECK(rc == VRAM_EIO || rc == VRAM_EPERM);
    CHECK(h == NULL);
}

/* A history written before the overage column (schema 1) opens, gains the
 * column, keeps its runs (overage 0) and records a soft run's overage. */
TEST(schema_1_gains_the_overage_column)
{
    fresh_dir();
    char path[128];
    snprintf(path, sizeof(path), "%s/old.db", dir);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, attempt INTEGER NOT NULL,"
        " started_unix_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL, command TEXT NOT NULL,"
        " profile TEXT NOT NULL, settings TEXT NOT NULL, device INTEGER NOT NULL,"
        " estimate_bytes INTEGER NOT NULL, peak_bytes INTEGER NOT NULL, outcome TEXT NOT NULL,"
        " exit_status INTEGER NOT NULL, oom_tried_bytes INTEGER NOT NULL, note TEXT NOT NULL);"
        "INSERT INTO runs VALUES(1, 'old', 1, 1, 1, 'true', '', '{}', 0, 1, 1, 'ok', 0, 0, '');"
        "PRAGMA user_version=1;", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    vram_history *h;
    CHECK_OK(vram_history_open(path, &h));
    vram_run_record r = sample_run("soft", 1, "ok", NULL, 0);
    r.over_bytes = GiB;
    CHECK_OK(vram_history_add(h, &r));
    vram_run_record *rows;
    size_t n;
    CHECK_OK(vram_history_list(h, 10, NULL, &rows, &n));
    CHECK_EQ(n, 2);
    CHECK_STR_EQ(rows[0].job, "soft");
    CHECK_EQ_U64(rows[0].over_bytes, GiB);
    CHECK_EQ_U64(rows[1].over_bytes, 0);
    vram_history_rows_free(rows, n);
    vram_history_close(h);
    /* Opened again, it is already at 2: nothing to add. */
    CHECK_OK(vram_history_open(path, &h));
    vram_history_close(h);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}
