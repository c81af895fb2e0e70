/* SPDX-License-Identifier: MIT */
/*
 * wire/queue.c - the daemon's jobs, on disk before anyone is told.
 *
 * SQLite in WAL mode with synchronous=FULL: a submit is in the write-ahead
 * log, fsync'ed, before its reply goes out, so neither a kill -9 nor a power
 * cut loses it.  Submits that arrive together share one transaction (the
 * daemon batches them: one fsync for the group), which is what keeps durable
 * submits fast.  The daemon goes further (vram__queue_defer_sync): those
 * commits are written without their fsync, which its syncer thread makes
 * on the log for everything committed meanwhile, before anyone is told.  A
 * job's end is written at once too, and its fsync is the next one made for
 * any reason, within VRAMD_END_SYNC_MS at the latest, and before anyone but
 * its runner is told of it (daemon.c): the runner goes on to its next job
 * meanwhile.  Its steps in between (starting, running, its process group)
 * are written with synchronous=NORMAL: in the log at once, so a kill -9 of
 * any process loses nothing, and on disk with the next fsync'ed commit; a
 * power cut can only forget that a job had started, and a job cut off by
 * one has to run again anyway, or that one ended in the last moments
 * before it, which then runs again.  That is one fsync a job, shared with
 * its group, where a job's end once had one of its own.  Every
 * state change is a compare-and-set ("UPDATE ... WHERE state = from"): the
 * daemon and the runner of a job can both try to move it and exactly one
 * wins, across crashes and restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sqlite.h"
#include "wire/queue.h"

/* The statements of the paths every job takes are prepared once, on first
 * use, and kept with the connection (reset and their bindings cleared after
 * each use, finalized at close): parsing SQL was a twentieth of vramd's CPU. */
enum { MOVE_START, MOVE_RUNNING, MOVE_QUEUED, MOVE_END, MOVE_UPDATE, MOVE_KINDS };
/* by target; from queued: a start (to running when its runner had claimed it ahead); from == to: update */

struct vram__queue {
    sqlite3 *db;
    sqlite3_stmt *insert;           /* a submit's row, prepared once */
    sqlite3_stmt *begin, *commit;   /* its transaction's, too: not parsed at every submit */
    sqlite3_stmt *move[MOVE_KINDS]; /* vram__queue_move's, one per MOVE_* kind */
    sqlite3_stmt *get, *find_key;   /* a job's row; a submit's idempotency key */
    int synchronous;                /* 1: FULL now, 0: NORMAL, -1: not set yet */
    int log_fd;                     /* the write-ahead log, when its fsync is the caller's; else -1 */
    bool unsynced;                  /* a commit that must reach the disk waits for that fsync */
    bool lazy;                      /* a job's end waits for the next one */
    char path[4096];
};

/* How a commit reaches the disk: with the next fsync made for any reason
 * (a job's step), soon and before anyone but its runner is told (a job's
 * end), or before its client is told (a submit). */
enum sync_need { SYNC_LATER, SYNC_SOON, SYNC_NOW };

/* Sets how this connection's next commits reach the disk: fsync'ed (FULL)
 * or written to the log and synced with the next FULL one (NORMAL); when
 * the caller makes the fsyncs, NORMAL, and it is told which it owes. */
static int durable(vram__queue *q, enum sync_need need)
{
    bool full = need != SYNC_LATER;
    if (full && q->log_fd >= 0) {   /* deferred: written now, fsync'ed by the caller's syncer */
        if (need == SYNC_NOW)
            q->unsynced = true;
        else
            q->lazy = true;
        full = false;
    }
    if (q->synchronous == (int)full)
        return SQLITE_OK;
    int src = sqlite3_exec(q->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                           NULL, NULL, NULL);
    q->synchronous = src == SQLITE_OK ? (int)full : -1;
    return src;
}

static const char *const state_names[] = {
#define VRAM__STATE_NAME(id, name) name,
    VRAM__JOB_STATE_LIST(VRAM__STATE_NAME)
#undef VRAM__STATE_NAME
};

const char *vram__job_state_name(int state)
{
    return state >= 0 && state < VRAM__JOB_STATE_COUNT ? state_names[state] : "?";
}

const char *vram__job_state_list(void)
{
#define VRAM__STATE_TEXT(id, name) ", " name
    static const char list[] = VRAM__JOB_STATE_LIST(VRAM__STATE_TEXT);
#undef VRAM__STATE_TEXT
    return list + 2;                /* past the first ", " */
}

bool vram__job_outcome_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
            return false;
    return true;
}

int vram__job_state_parse(const char *name)
{
    for (int i = 0; name && i < VRAM__JOB_STATE_COUNT; i++)
        if (!strcmp(state_names[i], name))
            return i;
    return -1;
}

void vram__job_clear(vram__job *j)
{
    free(j->argv_json);
    free(j->env_json);
    free(j->cwd);
    free(j->name);
    free(j->model);
    free(j->settings_json);
    free(j->ladder);
    free(j->output);
    free(j->deps);
    memset(j, 0, sizeof(*j));
}

/* The id is the rowid, without AUTOINCREMENT: that keyword keeps the
 * highest id in a table of its own (sqlite_sequence), written at every
 * insert, which doubled what a submit writes to the log.  No row is ever
 * deleted, so the next id (the highest plus one) is never one given before.
 * A queue made with AUTOINCREMENT by an older vramd keeps it. */
static const char *schema =
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  state INTEGER NOT NULL,"
    "  argv TEXT NOT NULL, env TEXT NOT NULL, cwd TEXT NOT NULL, name TEXT NOT NULL,"
    "  model TEXT NOT NULL, settings TEXT NOT NULL, ladder TEXT NOT NULL,"
    "  priority INTEGER NOT NULL, vram_bytes INTEGER NOT NULL, device_pref INTEGER NOT NULL,"
    "  owner_uid INTEGER NOT NULL,"
    "  submitted_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL DEFAULT 0,"
    "  ended_ms INTEGER NOT NULL DEFAULT 0,"
    "  device INTEGER NOT NULL DEFAULT -1, lease_bytes INTEGER NOT NULL DEFAULT 0,"
    "  runner_pid INTEGER NOT NULL DEFAULT 0, runner_start INTEGER NOT NULL DEFAULT 0,"
    "  job_pgid INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    "  exit_status INTEGER NOT NULL DEFAULT 0, outcome TEXT NOT NULL DEFAULT '',"
    "  peak_bytes INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '',"
    "  budget_bytes INTEGER NOT NULL DEFAULT 0, tier TEXT NOT NULL DEFAULT '',"
    "  time_ms INTEGER NOT NULL DEFAULT 0,"
    "  idem_key TEXT NOT NULL DEFAULT '', time_limit_ms INTEGER NOT NULL DEFAULT 0,"
    "  output TEXT NOT NULL DEFAULT '', deps TEXT NOT NULL DEFAULT '');"
    /* No index on state: nothing looks rows up by it (the daemon keeps the
     * jobs in memory, and reads them all once at its start), and every
     * submit and every move would write its pages too, in the same fsync. */
    "DROP INDEX IF EXISTS jobs_state;";

/* Columns added since the first schema, for a queue written by an older vramd. */
static const char *const added_columns[][2] = {
    { "budget_bytes", "ALTER TABLE jobs ADD COLUMN budget_bytes INTEGER NOT NULL DEFAULT 0" },
    { "tier", "ALTER TABLE jobs ADD COLUMN tier TEXT NOT NULL DEFAULT ''" },
    { "time_ms", "ALTER TABLE jobs ADD COLUMN time_ms INTEGER NOT NULL DEFAULT 0" },
    { "idem_key", "ALTER TABLE jobs ADD COLUMN idem_key TEXT NOT NULL DEFAULT ''" },
    { "time_limit_ms", "ALTER TABLE jobs ADD COLUMN time_limit_ms INTEGER NOT NULL DEFAULT 0" },
    { "output", "ALTER TABLE jobs ADD COLUMN output TEXT NOT NULL DEFAULT ''" },
    { "deps", "ALTER TABLE jobs ADD COLUMN deps TEXT NOT NULL DEFAULT ''" },
};

static int add_missing_columns(sqlite3 *db)
{
    int src = SQLITE_OK;
    for (size_t i = 0; src == SQLITE_OK && i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT %s FROM jobs LIMIT 0", added_columns[i][0]);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            sqlite3_finalize(st);
            continue;
        }
        src = sqlite3_exec(db, added_columns[i][1], NULL, NULL, NULL);
    }
    return src;
}

static int q_fail(vram__queue *q, int src, const char *doing)
{
    const char *msg = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(src);
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return vram__fail(VRAM_EBUSY, "queue %s: %s is locked (%s)", doing, q->path, msg);
    case SQLITE_FULL:
        return vram__fail(VRAM_ENOSPC, "queue %s: the disk holding %s is full (%s)", doing, q->path, msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return vram__fail(VRAM_EPERM, "queue %s: cannot write %s (%s)", doing, q->path, msg);
    default:
        return vram__fail(VRAM_EIO, "queue %s: %s: %s", doing, q->path, msg);
    }
}

int vram__queue_open(const char *path, vram__queue **out)
{
    *out = NULL;
    int ready = vram__sqlite_ready();
    if (ready)
        return ready;
    vram__queue *q = calloc(1, sizeof(*q));
    if (!q)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    vram__strlcpy(q->path, path, sizeof(q->path));
    q->synchronous = -1;
    q->log_fd = -1;
    int src = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                              SQLITE_OPEN_FULLMUTEX, NULL);
    if (src == SQLITE_OK) {
        sqlite3_busy_timeout(q->db, 5000);
        src = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
    }
    if (src == SQLITE_OK)
        src = sqlite3_exec(q->db, schema, NULL, NULL, NULL);
    if (src == SQLITE_OK)
        src = add_missing_columns(q->db);
    if (src == SQLITE_OK)           /* one job per user and idempotency key */
        src = sqlite3_exec(q->db, "CREATE UNIQUE INDEX IF NOT EXISTS jobs_key ON jobs(owner_uid, idem_key)"
                           " WHERE idem_key != ''", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        int rc = q_fail(q, src, "open");
        sqlite3_close(q->db);
        free(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* The first id whose row matches `where` (0: none); -1 on a read error. */
static int64_t first_id(vram__queue *q, const char *where)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT id FROM jobs WHERE %s ORDER BY id LIMIT 1", where);
    sqlite3_stmt *st = NULL;
    int64_t id = -1;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) == SQLITE_OK) {
        int src = sqlite3_step(st);
        id = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : src == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    return id;
}

int vram__queue_find_key(vram__queue *q, uint32_t uid, const char *key, uint64_t *id)
{
    *id = 0;
    int src = vram__sqlite_prepared(q->db, &q->find_key,
                                    "SELECT id FROM jobs WHERE owner_uid = ? AND idem_key = ?");
    if (src == SQLITE_OK) {
        sqlite3_stmt *st = q->find_key;
        sqlite3_bind_int64(st, 1, uid);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *id = (uint64_t)sqlite3_column_int64(st, 0);
    }
    vram__sqlite_done_with(q->find_key);
    return src == SQLITE_ROW || src == SQLITE_DONE ? 0 : q_fail(q, src, "key lookup");
}

int vram__queue_check(vram__queue *q)
{
    static const char *const text_columns[] = { "argv", "env", "cwd", "name", "model", "settings",
                                                "ladder", "outcome", "note", "tier", "output", "deps" };
    char where[128];
    snprintf(where, sizeof(where), "typeof(state) != 'integer' OR state < 0 OR state >= %d",
             VRAM__JOB_STATE_COUNT);
    int64_t id = first_id(q, where);
    if (id > 0)
        return vram__fail(VRAM_EPARSE, "the queue %s is damaged: job %lld has a state that is not one of "
                          "0 to %d (queued to %s); move the file away or repair it with sqlite3", q->path,
                          (long long)id, VRAM__JOB_STATE_COUNT - 1,
                          vram__job_state_name(VRAM__JOB_STATE_COUNT - 1));
    for (size_t i = 0; id == 0 && i < sizeof(text_columns) / sizeof(text_columns[0]); i++) {
        snprintf(where, sizeof(where), "%s IS NULL OR typeof(%s) != 'text'", text_columns[i], text_columns[i]);
        if ((id = first_id(q, where)) > 0)
            return vram__fail(VRAM_EPARSE, "the queue %s is damaged: job %lld has no text in its '%s' column "
                              "(NULL or not text); move the file away or repair it with sqlite3", q->path,
                              (long long)id, text_columns[i]);
    }
    if (id < 0)
        return q_fail(q, sqlite3_errcode(q->db), "check");
    /* A write that changes nothing: a read-only file, folder or disk, or a
     * full one, is said now rather than at the first submit. */
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    char sql[96];
    snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; PRAGMA user_version = %d; COMMIT;", version);
    int src = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        int rc = q_fail(q, src, "check");
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

/* One value of a PRAGMA that returns one (fallback when it cannot be read). */
static int64_t pragma_value(vram__queue *q, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st = NULL;
    int64_t v = fallback;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Gives the write-ahead log, once, the size it reaches before a checkpoint
 * starts it again from its head (wal_autocheckpoint pages), in written
 * zeros.  Until then every commit made the file longer, and an fdatasync
 * of a file that grew also writes its inode and the blocks it got: ext4
 * took about 100 us more for each of a fresh queue's first thousand pages.
 * Bytes past the log's last frame are never read (a frame counts only with
 * the log's salt and checksum), and the write lock held meanwhile keeps any
 * other writer (a runner recording a job's end) from appending to it.
 * Only speed depends on this: a failure leaves the log as SQLite made it. */
static void log_presize(vram__queue *q, const char *log)
{
    int64_t page = pragma_value(q, "PRAGMA page_size", 4096);
    int64_t pages = pragma_value(q, "PRAGMA wal_autocheckpoint", 1000);
    if (page <= 0 || page > 65536 || pages <= 0 || pages > 100000)
        return;
    off_t want = 32 + (off_t)(pages + 16) * (off_t)(page + 24);   /* header, frames (24-byte heads) */
    if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return;
    int fd = open(log, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < want) {
        static const char zeros[65536];
        bool ok = true;
        for (off_t at = st.st_size; ok && at < want;) {
            size_t n = want - at < (off_t)sizeof(zeros) ? (size_t)(want - at) : sizeof(zeros);
            ssize_t w = pwrite(fd, zeros, n, at);
            if (w < 0 && errno == EINTR)
                continue;
            ok = w > 0;
            at += ok ? w : 0;
        }
        /* On disk now, size and blocks: the commits' fsyncs write data only. */
        if (!ok || fdatasync(fd) != 0)
            ok = ftruncate(fd, st.st_size) == 0;   /* a full disk: as it was */
    }
    if (fd >= 0)
        close(fd);
    sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
}

int vram__queue_defer_sync(vram__queue *q)
{
    char log[4200];
    snprintf(log, sizeof(log), "%s-wal", q->path);
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vram__fail(VRAM_EIO, "cannot open the queue's log %s: %s", log, strerror(errno));
    q->log_fd = fd;
    log_presize(q, log);
    return 0;
}

bool vram__queue_take_unsynced(vram__queue *q)
{
    bool was = q->unsynced;
    q->unsynced = false;
    return was;
}

bool vram__queue_take_lazy(vram__queue *q)
{
    bool was = q->lazy;
    q->lazy = false;
    return was;
}

int vram__queue_log_fd(const vram__queue *q)
{
    return q->log_fd;
}

void vram__queue_close(vram__queue *q)
{
    if (!q)
        return;
    if (q->log_fd >= 0)
        close(q->log_fd);
    sqlite3_finalize(q->insert);
    sqlite3_finalize(q->begin);
    sqlite3_finalize(q->commit);
    for (int k = 0; k < MOVE_KINDS; k++)
        sqlite3_finalize(q->move[k]);
    sqlite3_finalize(q->get);
    sqlite3_finalize(q->find_key);
    sqlite3_close(q->db);
    free(q);
}

struct sqlite3 *vram__queue_db(vram__queue *q)
{
    return q->db;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* One row is its own transaction (the INSERT takes the write lock as it
 * starts, as BEGIN IMMEDIATE would): no BEGIN and COMMIT to run around it,
 * two statements fewer a submit when they come one at a time. */
int vram__queue_add(vram__queue *q, vram__job *jobs, size_t n)
{
    bool alone = n == 1;
    int src = durable(q, SYNC_NOW);
    if (src == SQLITE_OK && !alone)
        src = vram__sqlite_step_cached(q->db, &q->begin, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        return q_fail(q, src, "submit");
    if (!q->insert)
        src = sqlite3_prepare_v2(q->db,
            "INSERT INTO jobs(state, argv, env, cwd, name, model, settings, ladder, priority, vram_bytes,"
            " device_pref, owner_uid, submitted_ms, budget_bytes, tier, time_ms, idem_key, time_limit_ms,"
            " output, deps) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &q->insert, NULL);
    sqlite3_stmt *st = q->insert;
    uint64_t now = vram__unix_ms();
    for (size_t i = 0; src == SQLITE_OK && i < n; i++) {
        vram__job *j = &jobs[i];
        int k = 1;
        sqlite3_bind_int(st, k++, VRAM__JOB_QUEUED);
        sqlite3_bind_text(st, k++, or_empty(j->argv_json), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, j->env_json ? j->env_json : "{}", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, or_empty(j->cwd), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, or_empty(j->name), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, or_empty(j->model), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, j->settings_json ? j->settings_json : "{}", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, or_empty(j->ladder), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, k++, j->priority);
        sqlite3_bind_int64(st, k++, (sqlite3_int64)j->vram_bytes);
        sqlite3_bind_int(st, k++, j->device_pref);
        sqlite3_bind_int64(st, k++, j->owner_uid);
        sqlite3_bind_int64(st, k++, (sqlite3_int64)now);
        sqlite3_bind_int64(st, k++, (sqlite3_int64)j->budget_bytes);
        sqlite3_bind_text(st, k++, j->tier, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, k++, (sqlite3_int64)j->time_ms);
        sqlite3_bind_text(st, k++, or_empty(j->idem_key), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, k++, (sqlite3_int64)j->time_limit_ms);
        sqlite3_bind_text(st, k++, or_empty(j->output), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, or_empty(j->deps), -1, SQLITE_STATIC);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            src = SQLITE_OK;
            j->id = (uint64_t)sqlite3_last_insert_rowid(q->db);
            j->state = VRAM__JOB_QUEUED;
            j->submitted_ms = now;
            j->device = -1;
        }
        sqlite3_reset(st);
    }
    if (st)
        sqlite3_clear_bindings(st); /* it borrowed the caller's strings */
    if (src == SQLITE_OK && !alone)
        src = vram__sqlite_step_cached(q->db, &q->commit, "COMMIT");
    if (src != SQLITE_OK) {
        int rc = q_fail(q, src, "submit");
        if (!sqlite3_get_autocommit(q->db))
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            jobs[i].id = 0;
        return rc;
    }
    /* Deferred: the fsync that follows writes the log's new pages.  Their
     * write was once started here (sync_file_range), on the loop's thread:
     * each commit then paid a second submission to the disk, and CLI
     * submits in a row were 5-9% slower (bench/tsp, in turn). */
    return 0;
}

int vram__queue_update(vram__queue *q, uint64_t id, int state, const vram__job *f)
{
    return vram__queue_move(q, id, state, state, f);
}

int vram__queue_move(vram__queue *q, uint64_t id, int from, int to, const vram__job *f)
{
    static const vram__job none = { .device = -1 };
    if (!f)
        f = &none;
    const char *sql;
    int kind;
    bool start = from == VRAM__JOB_QUEUED && (to == VRAM__JOB_STARTING || to == VRAM__JOB_RUNNING);
    switch (start ? VRAM__JOB_STARTING : to) {
    case VRAM__JOB_STARTING:
        kind = MOVE_START;
        sql = "UPDATE jobs SET state=?3, device=?4, lease_bytes=?5, started_ms=?6,"
              " runner_pid=?7, runner_start=?8, attempts=attempts+1 WHERE id=?1 AND state=?2";
        break;
    case VRAM__JOB_RUNNING:
        kind = MOVE_RUNNING;
        sql = "UPDATE jobs SET state=?3, runner_pid=?7, runner_start=?8, job_pgid=?9,"
              " device=CASE WHEN ?4>=0 THEN ?4 ELSE device END,"
              " lease_bytes=CASE WHEN ?5>0 THEN ?5 ELSE lease_bytes END"
              " WHERE id=?1 AND state=?2";
        break;
    case VRAM__JOB_QUEUED:
        kind = MOVE_QUEUED;
        sql = "UPDATE jobs SET state=?3, runner_pid=0, runner_start=0, job_pgid=0, device=-1,"
              " lease_bytes=0, note=?13 WHERE id=?1 AND state=?2";
        break;
    default:                        /* succeeded, failed, canceled: its environment, */
        kind = MOVE_END;
        sql = "UPDATE jobs SET state=?3, ended_ms=?6, exit_status=?10, outcome=?11,"   /* never needed */
              " peak_bytes=MAX(peak_bytes, ?12), note=?13, env='{}' WHERE id=?1 AND state=?2";  /* again, goes */
    }
    if (from == to) {
        kind = MOVE_UPDATE;
        sql = "UPDATE jobs SET job_pgid=CASE WHEN ?9>0 THEN ?9 ELSE job_pgid END,"
              " device=CASE WHEN ?4>=0 THEN ?4 ELSE device END,"
              " lease_bytes=CASE WHEN ?5>0 THEN ?5 ELSE lease_bytes END,"
              " peak_bytes=MAX(peak_bytes, ?12) WHERE id=?1 AND state=?2 AND state=?3";
    }
    int src = durable(q, to == VRAM__JOB_STARTING || to == VRAM__JOB_RUNNING ? SYNC_LATER
                         : kind == MOVE_END ? SYNC_SOON : SYNC_NOW);
    if (src == SQLITE_OK)
        src = vram__sqlite_prepared(q->db, &q->move[kind], sql);
    sqlite3_stmt *st = q->move[kind];
    if (src == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
        sqlite3_bind_int(st, 2, from);
        sqlite3_bind_int(st, 3, to);
        sqlite3_bind_int(st, 4, f->device);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)f->lease_bytes);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)vram__unix_ms());
        sqlite3_bind_int64(st, 7, f->runner_pid);
        sqlite3_bind_int64(st, 8, (sqlite3_int64)f->runner_start);
        sqlite3_bind_int64(st, 9, f->job_pgid);
        sqlite3_bind_int(st, 10, f->exit_status);
        sqlite3_bind_text(st, 11, f->outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 12, (sqlite3_int64)f->peak_bytes);
        sqlite3_bind_text(st, 13, f->note, -1, SQLITE_STATIC);
        src = sqlite3_step(st);
    }
    int changed = src == SQLITE_DONE ? sqlite3_changes(q->db) : 0;
    vram__sqlite_done_with(st);
    if (src != SQLITE_DONE)
        return q_fail(q, src, "update");
    if (changed == 0)
        return vram__fail(VRAM_EAGAIN, "job %llu is not %s", (unsigned long long)id,
                          vram__job_state_name(from));
    return 0;
}

/* ---- reading ------------------------------------------------------------------------ */

#define COLUMNS "id, state, argv, env, cwd, name, model, settings, ladder, priority, vram_bytes," \
                " device_pref, owner_uid, submitted_ms, started_ms, ended_ms, device, lease_bytes,"  \
                " runner_pid, runner_start, job_pgid, attempts, exit_status, outcome, peak_bytes, note,"   \
                " budget_bytes, tier, time_ms, time_limit_ms, output, deps"

/* Fills j from a row; the strings point into the statement (valid until the
 * next step), which is what queue_each's visitors get. */
static void row_view(sqlite3_stmt *st, vram__job *j)
{
    int k = 0;
    j->id = (uint64_t)sqlite3_column_int64(st, k++);
    j->state = sqlite3_column_int(st, k++);
    j->argv_json = (char *)sqlite3_column_text(st, k++);
    j->env_json = (char *)sqlite3_column_text(st, k++);
    j->cwd = (char *)sqlite3_column_text(st, k++);
    j->name = (char *)sqlite3_column_text(st, k++);
    j->model = (char *)sqlite3_column_text(st, k++);
    j->settings_json = (char *)sqlite3_column_text(st, k++);
    j->ladder = (char *)sqlite3_column_text(st, k++);
    j->priority = sqlite3_column_int(st, k++);
    j->vram_bytes = (uint64_t)sqlite3_column_int64(st, k++);
    j->device_pref = sqlite3_column_int(st, k++);
    j->owner_uid = (uint32_t)sqlite3_column_int64(st, k++);
    j->submitted_ms = (uint64_t)sqlite3_column_int64(st, k++);
    j->started_ms = (uint64_t)sqlite3_column_int64(st, k++);
    j->ended_ms = (uint64_t)sqlite3_column_int64(st, k++);
    j->device = sqlite3_column_int(st, k++);
    j->lease_bytes = (uint64_t)sqlite3_column_int64(st, k++);
    j->runner_pid = (uint32_t)sqlite3_column_int64(st, k++);
    j->runner_start = (uint64_t)sqlite3_column_int64(st, k++);
    j->job_pgid = (uint32_t)sqlite3_column_int64(st, k++);
    j->attempts = (unsigned)sqlite3_column_int(st, k++);
    j->exit_status = sqlite3_column_int(st, k++);
    vram__strlcpy(j->outcome, (const char *)sqlite3_column_text(st, k++), sizeof(j->outcome));
    j->peak_bytes = (uint64_t)sqlite3_column_int64(st, k++);
    vram__strlcpy(j->note, (const char *)sqlite3_column_text(st, k++), sizeof(j->note));
    j->budget_bytes = (uint64_t)sqlite3_column_int64(st, k++);
    vram__strlcpy(j->tier, (const char *)sqlite3_column_text(st, k++), sizeof(j->tier));
    j->time_ms = (uint64_t)sqlite3_column_int64(st, k++);
    j->time_limit_ms = (uint64_t)sqlite3_column_int64(st, k++);
    j->output = (char *)sqlite3_column_text(st, k++);
    j->deps = (char *)sqlite3_column_text(st, k++);
}

int vram__queue_each(vram__queue *q, unsigned mask, vram__job_visit visit, void *user)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(q->db, "SELECT " COLUMNS " FROM jobs WHERE (1 << state) & ?1"
                                 " ORDER BY id", -1, &st, NULL);
    if (src == SQLITE_OK)
        sqlite3_bind_int(st, 1, (int)mask);
    int rc = 0;
    while (src == SQLITE_OK && !rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        vram__job j = { 0 };
        row_view(st, &j);
        rc = visit(user, &j);
        src = SQLITE_OK;
    }
    if (!rc && src != SQLITE_DONE && src != SQLITE_OK)
        rc = q_fail(q, src, "read");
    sqlite3_finalize(st);
    return rc;
}

static char *copy_text(const char *s)
{
    return strdup(s ? s : "");
}

int vram__queue_get(vram__queue *q, uint64_t id, vram__job *out)
{
    memset(out, 0, sizeof(*out));
    int src = vram__sqlite_prepared(q->db, &q->get, "SELECT " COLUMNS " FROM jobs WHERE id = ?");
    sqlite3_stmt *st = q->get;
    if (src == SQLITE_OK)
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    int rc = 0;
    if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        row_view(st, out);
        out->argv_json = copy_text(out->argv_json);
        out->env_json = copy_text(out->env_json);
        out->cwd = copy_text(out->cwd);
        out->name = copy_text(out->name);
        out->model = copy_text(out->model);
        out->settings_json = copy_text(out->settings_json);
        out->ladder = copy_text(out->ladder);
        out->output = copy_text(out->output);
        out->deps = copy_text(out->deps);
        if (!out->argv_json || !out->env_json || !out->cwd || !out->name || !out->model ||
            !out->settings_json || !out->ladder || !out->output || !out->deps) {
            vram__job_clear(out);
            rc = vram__fail(VRAM_ENOMEM, "out of host memory");
        }
    } else if (src == SQLITE_DONE) {
        rc = vram__fail(VRAM_ENOENT, "no job %llu", (unsigned long long)id);
    } else {
        rc = q_fail(q, src, "read");
    }
    vram__sqlite_done_with(st);
    return rc;
}

int vram__queue_counts(vram__queue *q, uint64_t counts[VRAM__JOB_STATE_COUNT])
{
    memset(counts, 0, VRAM__JOB_STATE_COUNT * sizeof(counts[0]));
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(q->db, "SELECT state, COUNT(*) FROM jobs GROUP BY state", -1, &st, NULL);
    while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int s = sqlite3_column_int(st, 0);
        if (s >= 0 && s < VRAM__JOB_STATE_COUNT)
            counts[s] = (uint64_t)sqlite3_column_int64(st, 1);
        src = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return src == SQLITE_DONE || src == SQLITE_OK ? 0 : q_fail(q, src, "count");
}
