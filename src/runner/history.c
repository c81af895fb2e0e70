/* SPDX-License-Identifier: MIT */
/*
 * runner/history.c - what every run really used, kept in SQLite.
 *
 * One row per attempt (command, profile, settings, device, estimate,
 * observed peak, duration, outcome) and its memory timeline, written in one
 * transaction so that a crash or a full disk never leaves half a run.  The
 * database is in WAL mode with a busy timeout, so several `vram run`s and
 * the daemon can record at once; when it stays locked or the disk is full,
 * the caller hears a distinct error and the job's own result stands.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "core/sqlite.h"
#include "runner/runner.h"

#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 2000

/* The statements every job's runner takes (a record, a context size) are
 * kept with the connection (core/sqlite.h), and the lock makes them one
 * caller's at a time: a history may be shared by threads, as SQLite's
 * serialized connection allows. */
struct vram_history {
    sqlite3 *db;
    pthread_mutex_t lock;
    sqlite3_stmt *begin, *commit, *run_insert, *sample_insert, *context_get, *context_set[2];
    char path[4096];
};

static const char *schema =
    "CREATE TABLE IF NOT EXISTS runs ("
    "  id INTEGER PRIMARY KEY,"
    "  job TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  started_unix_ms INTEGER NOT NULL,"
    "  duration_ms INTEGER NOT NULL,"
    "  command TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  settings TEXT NOT NULL,"
    "  device INTEGER NOT NULL,"
    "  estimate_bytes INTEGER NOT NULL,"
    "  peak_bytes INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  exit_status INTEGER NOT NULL,"
    "  oom_tried_bytes INTEGER NOT NULL,"
    "  note TEXT NOT NULL,"
    "  over_bytes INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS runs_job ON runs(job);"
    "CREATE TABLE IF NOT EXISTS samples ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id),"
    "  t_ms INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS samples_run ON samples(run_id);"
    "CREATE TABLE IF NOT EXISTS contexts ("
    "  key TEXT PRIMARY KEY,"
    "  bytes INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  unix_ms INTEGER NOT NULL);";

/* Maps an SQLite failure to a vram code with a message. */
static int db_fail(vram_history *h, int src, const char *doing)
{
    const char *msg = h->db ? sqlite3_errmsg(h->db) : sqlite3_errstr(src);
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return vram__fail(VRAM_EBUSY, "history %s: %s is locked by another program (%s)", doing,
                          h->path, msg);
    case SQLITE_FULL:
        return vram__fail(VRAM_ENOSPC, "history %s: the disk holding %s is full (%s)", doing,
                          h->path, msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return vram__fail(VRAM_EPERM, "history %s: cannot write %s (%s)", doing, h->path, msg);
    default:
        return vram__fail(VRAM_EIO, "history %s: %s: %s", doing, h->path, msg);
    }
}

static int default_path(char *buf, size_t cap)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (state && *state)
        snprintf(buf, cap, "%s/vram/history.db", state);
    else if (home && *home)
        snprintf(buf, cap, "%s/.local/state/vram/history.db", home);
    else
        return vram__fail(VRAM_EINVAL, "no HOME or XDG_STATE_HOME: give the history's path "
                          "(--history or VRAM_HISTORY)");
    return 0;
}

static bool journal_is_wal(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    bool wal = false;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        wal = !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    return wal;
}

static int schema_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* WAL lets readers and one writer work at once.  Switching needs the
 * database to itself, and SQLite answers a switch that meets another
 * opener's lock with BUSY at once, without waiting (a lock upgrade it
 * refuses rather than risk a deadlock): runners started together on a
 * new history meet there, so the switch is tried again for as long as the
 * busy timeout.  A history in WAL already is left as it is. */
static int make_wal(sqlite3 *db)
{
    int src = SQLITE_OK;
    for (unsigned waited = 0; !journal_is_wal(db); waited += 5) {
        src = sqlite3_exec(db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL);
        if ((src != SQLITE_BUSY && src != SQLITE_LOCKED) || waited >= BUSY_TIMEOUT_MS)
            break;
        vram__sleep_ms(5);
    }
    return src;
}

/* Makes or upgrades the schema, once, in a write transaction taken at its
 * start (BEGIN IMMEDIATE waits through the busy timeout, where a read
 * turned write would fail at once): of several openers, the first makes
 * it and the others find it made. */
static int make_schema(sqlite3 *db)
{
    int src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return src;
    int was = schema_version(db);
    if (was < SCHEMA_VERSION)
        src = sqlite3_exec(db, schema, NULL, NULL, NULL);
    /* Version 2 added over_bytes (--enforce soft's overage). */
    if (src == SQLITE_OK && was == 1)
        src = sqlite3_exec(db, "ALTER TABLE runs ADD COLUMN over_bytes INTEGER NOT NULL DEFAULT 0;",
                           NULL, NULL, NULL);
    if (src == SQLITE_OK && was < SCHEMA_VERSION)
        src = sqlite3_exec(db, "PRAGMA user_version=2;", NULL, NULL, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        int keep = src;
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        src = keep;
    }
    return src;
}

int vram_history_open(const char *path, vram_history **out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram_history_open: NULL output");
    *out = NULL;
    int ready = vram__sqlite_ready();
    if (ready)
        return ready;
    vram_history *h = calloc(1, sizeof(*h));
    if (!h)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    pthread_mutex_init(&h->lock, NULL);
    int rc = 0;
    if (path && *path)
        vram__strlcpy(h->path, path, sizeof(h->path));
    else
        rc = default_path(h->path, sizeof(h->path));
    if (!rc)
        rc = vram__make_parent_dirs(h->path);
    if (rc) {
        pthread_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    int src = sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                              SQLITE_OPEN_FULLMUTEX, NULL);
    if (src == SQLITE_OK) {
        sqlite3_busy_timeout(h->db, BUSY_TIMEOUT_MS);
        src = sqlite3_exec(h->db, "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    }
    if (src == SQLITE_OK)
        src = make_wal(h->db);
    if (src == SQLITE_OK && schema_version(h->db) < SCHEMA_VERSION)
        src = make_schema(h->db);
    if (src != SQLITE_OK) {
        rc = db_fail(h, src, "open");
        sqlite3_close(h->db);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void vram_history_close(vram_history *h)
{
    if (!h)
        return;
    sqlite3_stmt *kept[] = { h->begin, h->commit, h->run_insert, h->sample_insert, h->context_get,
                             h->context_set[0], h->context_set[1] };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        sqlite3_finalize(kept[i]);
    sqlite3_close(h->db);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

const char *vram_history_path(const vram_history *h)
{
    return h ? h->path : "";
}

/* ---- writing ---------------------------------------------------------------- */

static int insert_run(vram_history *h, const vram_run_record *r, int64_t *id)
{
    int src = vram__sqlite_prepared(h->db, &h->run_insert,
        "INSERT INTO runs(job, attempt, started_unix_ms, duration_ms, command, profile, settings,"
        " device, estimate_bytes, peak_bytes, outcome, exit_status, oom_tried_bytes, note, over_bytes)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    sqlite3_stmt *st = h->run_insert;
    if (src == SQLITE_OK) {
        int i = 1;
        sqlite3_bind_text(st, i++, r->job, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, i++, (int)r->attempt);
        sqlite3_bind_int64(st, i++, (sqlite3_int64)r->started_unix_ms);
        sqlite3_bind_int64(st, i++, (sqlite3_int64)r->duration_ms);
        sqlite3_bind_text(st, i++, r->command ? r->command : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, i++, r->profile ? r->profile : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, i++, r->settings && *r->settings ? r->settings : "{}", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, i++, r->device);
        sqlite3_bind_int64(st, i++, (sqlite3_int64)r->estimate_bytes);
        sqlite3_bind_int64(st, i++, (sqlite3_int64)r->peak_bytes);
        sqlite3_bind_text(st, i++, r->outcome ? r->outcome : "failed", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, i++, r->exit_status);
        sqlite3_bind_int64(st, i++, (sqlite3_int64)r->oom_tried_bytes);
        sqlite3_bind_text(st, i++, r->note ? r->note : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, i++, (sqlite3_int64)r->over_bytes);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            src = SQLITE_OK;
    }
    vram__sqlite_done_with(st);
    *id = sqlite3_last_insert_rowid(h->db);
    return src;
}

static int insert_samples(vram_history *h, int64_t id, const vram_point *pts, size_t n)
{
    int src = vram__sqlite_prepared(h->db, &h->sample_insert,
                                    "INSERT INTO samples(run_id, t_ms, bytes) VALUES(?,?,?)");
    sqlite3_stmt *st = h->sample_insert;
    for (size_t i = 0; src == SQLITE_OK && i < n; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)pts[i].t_ms);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)pts[i].bytes);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            src = SQLITE_OK;
        sqlite3_reset(st);
    }
    vram__sqlite_done_with(st);
    return src;
}

int vram_history_add(vram_history *h, vram_run_record *rec)
{
    if (!h || !rec || (rec->ntimeline && !rec->timeline))
        return vram__fail(VRAM_EINVAL, "vram_history_add: NULL argument");
    pthread_mutex_lock(&h->lock);
    int64_t id = 0;
    int src = vram__sqlite_step_cached(h->db, &h->begin, "BEGIN IMMEDIATE");
    if (src == SQLITE_OK)
        src = insert_run(h, rec, &id);
    if (src == SQLITE_OK)
        src = insert_samples(h, id, rec->timeline, rec->ntimeline);
    if (src == SQLITE_OK)
        src = vram__sqlite_step_cached(h->db, &h->commit, "COMMIT");
    int rc = 0;
    if (src != SQLITE_OK) {
        rc = db_fail(h, src, "write");
        if (!sqlite3_get_autocommit(h->db))
            sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        rec->id = id;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */

int vram__history_each(vram_history *h, const char *where, const char *arg, unsigned limit,
                       vram__history_visit visit, void *user)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT id, job, attempt, started_unix_ms, duration_ms, command, profile, settings,"
             " device, estimate_bytes, peak_bytes, outcome, exit_status, oom_tried_bytes, note,"
             " over_bytes FROM runs %s ORDER BY id DESC LIMIT %u", where ? where : "", limit ? limit : 50);
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(h->db, sql, -1, &st, NULL);
    if (src == SQLITE_OK && arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    int rc = 0;
    while (src == SQLITE_OK && !rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        vram_run_record r;
        memset(&r, 0, sizeof(r));
        r.id = sqlite3_column_int64(st, 0);
        vram__strlcpy(r.job, (const char *)sqlite3_column_text(st, 1), sizeof(r.job));
        r.attempt = (unsigned)sqlite3_column_int(st, 2);
        r.started_unix_ms = (uint64_t)sqlite3_column_int64(st, 3);
        r.duration_ms = (uint64_t)sqlite3_column_int64(st, 4);
        r.command = (const char *)sqlite3_column_text(st, 5);
        r.profile = (const char *)sqlite3_column_text(st, 6);
        r.settings = (const char *)sqlite3_column_text(st, 7);
        r.device = sqlite3_column_int(st, 8);
        r.estimate_bytes = (uint64_t)sqlite3_column_int64(st, 9);
        r.peak_bytes = (uint64_t)sqlite3_column_int64(st, 10);
        r.outcome = (const char *)sqlite3_column_text(st, 11);
        r.exit_status = sqlite3_column_int(st, 12);
        r.oom_tried_bytes = (uint64_t)sqlite3_column_int64(st, 13);
        r.note = (const char *)sqlite3_column_text(st, 14);
        r.over_bytes = (uint64_t)sqlite3_column_int64(st, 15);
        rc = visit(user, &r);
        src = SQLITE_OK;
    }
    if (src != SQLITE_DONE && src != SQLITE_OK && !rc)
        rc = db_fail(h, src, "read");
    sqlite3_finalize(st);
    return rc;
}

int vram__history_timeline(vram_history *h, int64_t id, vram_point **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(h->db, "SELECT t_ms, bytes FROM samples WHERE run_id = ? ORDER BY t_ms",
                                 -1, &st, NULL);
    size_t cap = 0;
    if (src == SQLITE_OK)
        sqlite3_bind_int64(st, 1, id);
    while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            vram_point *p = realloc(*out, cap * sizeof(*p));
            if (!p) {
                sqlite3_finalize(st);
                free(*out);
                *out = NULL;
                return vram__fail(VRAM_ENOMEM, "out of host memory reading a timeline");
            }
            *out = p;
        }
        (*out)[*n].t_ms = (uint64_t)sqlite3_column_int64(st, 0);
        (*out)[(*n)++].bytes = (uint64_t)sqlite3_column_int64(st, 1);
        src = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE && src != SQLITE_OK) {
        free(*out);
        *out = NULL;
        return db_fail(h, src, "read");
    }
    return 0;
}

static int json_row(void *user, const vram_run_record *r)
{
    vram__json *j = user;
    vram__json_object_begin(j);
    vram__json_field_int(j, "id", r->id);
    vram__json_field_string(j, "job", r->job);
    vram__json_field_uint(j, "attempt", r->attempt);
    vram__json_field_uint(j, "started_unix_ms", r->started_unix_ms);
    vram__json_field_uint(j, "ended_unix_ms", r->started_unix_ms + r->duration_ms);
    vram__json_field_uint(j, "duration_ms", r->duration_ms);
    vram__json_field_string(j, "command", r->command);
    vram__json_field_string(j, "profile", r->profile);
    vram__json_key(j, "settings");
    vram__json_raw(j, r->settings && *r->settings == '{' ? r->settings : "{}");
    vram__json_field_int(j, "device", r->device);
    vram__json_field_uint(j, "estimate_bytes", r->estimate_bytes);
    vram__json_field_uint(j, "peak_bytes", r->peak_bytes);
    vram__json_field_string(j, "outcome", r->outcome);
    vram__json_field_int(j, "exit_status", r->exit_status);
    vram__json_field_uint(j, "oom_tried_bytes", r->oom_tried_bytes);
    vram__json_field_string(j, "note", r->note);
    vram__json_field_uint(j, "over_bytes", r->over_bytes);
    vram__json_object_end(j);
    return 0;
}

int vram_history_json(vram_history *h, unsigned limit, const char *job, char **json_out)
{
    if (!h || !json_out)
        return vram__fail(VRAM_EINVAL, "vram_history_json: NULL argument");
    *json_out = NULL;
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_array_begin(&j);
    int rc = vram__history_each(h, job ? "WHERE job = ?" : NULL, job, limit, json_row, &j);
    vram__json_array_end(&j);
    if (rc) {
        vram__buf_free(&b);
        return rc;
    }
    *json_out = vram__buf_take(&b, &rc);
    return rc;
}

int vram__history_limit_pages(vram_history *h, unsigned pages)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%u", pages);
    int src = sqlite3_exec(h->db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? 0 : db_fail(h, src, "limit");
}

/* ---- lists ------------------------------------------------------------------------ */

typedef struct row_list {
    vram_run_record *rows;
    size_t n, cap;
} row_list;

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static int keep_row(void *user, const vram_run_record *r)
{
    row_list *l = user;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        vram_run_record *p = realloc(l->rows, cap * sizeof(*p));
        if (!p)
            return vram__fail(VRAM_ENOMEM, "out of host memory listing runs");
        l->rows = p;
        l->cap = cap;
    }
    vram_run_record *c = &l->rows[l->n];
    *c = *r;
    c->timeline = NULL;
    c->ntimeline = 0;
    c->command = dup_or_empty(r->command);
    c->profile = dup_or_empty(r->profile);
    c->settings = dup_or_empty(r->settings);
    c->outcome = dup_or_empty(r->outcome);
    c->note = dup_or_empty(r->note);
    l->n++;
    if (!c->command || !c->profile || !c->settings || !c->outcome || !c->note)
        return vram__fail(VRAM_ENOMEM, "out of host memory listing runs");
    return 0;
}

void vram_history_rows_free(vram_run_record *rows, size_t count)
{
    if (!rows)
        return;
    for (size_t i = 0; i < count; i++) {
        free((char *)rows[i].command);
        free((char *)rows[i].profile);
        free((char *)rows[i].settings);
        free((char *)rows[i].outcome);
        free((char *)rows[i].note);
    }
    free(rows);
}

int vram_history_list(vram_history *h, unsigned limit, const char *job, vram_run_record **rows_out,
                      size_t *count_out)
{
    if (!h || !rows_out || !count_out)
        return vram__fail(VRAM_EINVAL, "vram_history_list: NULL argument");
    *rows_out = NULL;
    *count_out = 0;
    row_list l = { NULL, 0, 0 };
    int rc = vram__history_each(h, job ? "WHERE job = ?" : NULL, job, limit, keep_row, &l);
    if (rc) {
        vram_history_rows_free(l.rows, l.n);
        return rc;
    }
    *rows_out = l.rows;
    *count_out = l.n;
    return 0;
}

/* ---- calibration rows ------------------------------------------------------------ */

typedef struct measure_list {
    vram_measurement *rows;
    size_t n, cap;
} measure_list;

/* {"resolution":"720p","steps":"30"} as "key=value" strings. */
static int settings_list(const char *json, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    vram__json_doc *d;
    char err[128];
    if (vram__json_read(json, strlen(json), 0, &d, err, sizeof(err)))
        return 0;                   /* an unreadable row has no settings */
    const vram__jv *root = vram__json_root(d);
    int rc = 0;
    if (root->kind == VRAM__JV_OBJECT && root->n) {
        *out = calloc(root->n, sizeof(**out));
        for (size_t i = 0; *out && i < root->n; i++) {
            const vram__jv *v = root->items[i];
            const char *text = v->kind == VRAM__JV_STRING || v->kind == VRAM__JV_NUMBER ? v->str : NULL;
            if (!text)
                continue;
            size_t len = strlen(root->keys[i]) + strlen(text) + 2;
            char *kv = malloc(len);
            if (!kv) {
                rc = VRAM_ENOMEM;
                break;
            }
            snprintf(kv, len, "%s=%s", root->keys[i], text);
            (*out)[(*n)++] = kv;
        }
        if (!*out)
            rc = VRAM_ENOMEM;
    }
    vram__json_doc_free(d);
    return rc;
}

static int keep_measurement(void *user, const vram_run_record *r)
{
    measure_list *l = user;
    if (strcmp(r->outcome, "ok") != 0 || r->peak_bytes == 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        vram_measurement *p = realloc(l->rows, cap * sizeof(*p));
        if (!p)
            return vram__fail(VRAM_ENOMEM, "out of host memory");
        l->rows = p;
        l->cap = cap;
    }
    vram_measurement *m = &l->rows[l->n];
    memset(m, 0, sizeof(*m));
    char **kv = NULL;
    size_t nkv = 0;
    if (settings_list(r->settings, &kv, &nkv))
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    m->settings = (const char *const *)kv;
    m->nsettings = nkv;
    m->peak_bytes = r->peak_bytes;
    m->seconds = (double)r->duration_ms / 1000.0;
    l->n++;
    return 0;
}

void vram_history_measurements_free(vram_measurement *rows, size_t count)
{
    for (size_t i = 0; rows && i < count; i++) {
        for (size_t k = 0; k < rows[i].nsettings; k++)
            free((char *)rows[i].settings[k]);
        free((void *)rows[i].settings);
    }
    free(rows);
}

int vram_history_measurements(vram_history *h, const char *profile, vram_measurement **rows_out,
                              size_t *count_out)
{
    if (!h || !profile || !rows_out || !count_out)
        return vram__fail(VRAM_EINVAL, "vram_history_measurements: NULL argument");
    *rows_out = NULL;
    *count_out = 0;
    measure_list l = { NULL, 0, 0 };
    int rc = vram__history_each(h, "WHERE profile = ? AND outcome = 'ok'", profile, 1000000,
                                keep_measurement, &l);
    if (!rc && l.n == 0)
        rc = vram__fail(VRAM_ENOENT, "the history at %s has no finished run of %s to calibrate from",
                        h->path, profile);
    if (rc) {
        vram_history_measurements_free(l.rows, l.n);
        return rc;
    }
    *rows_out = l.rows;
    *count_out = l.n;
    return 0;
}

/* ---- the CUDA context's measured size -------------------------------------------- */

int vram__history_context(vram_history *h, const char *key, uint64_t *bytes, char *source, size_t cap)
{
    if (!h || !key || !bytes)
        return vram__fail(VRAM_EINVAL, "vram__history_context: NULL argument");
    pthread_mutex_lock(&h->lock);
    int src = vram__sqlite_prepared(h->db, &h->context_get, "SELECT bytes, source FROM contexts WHERE key = ?1");
    if (src != SQLITE_OK) {
        int rc = db_fail(h, src, "reading the context sizes");
        pthread_mutex_unlock(&h->lock);
        return rc;
    }
    sqlite3_stmt *st = h->context_get;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = VRAM_ENOENT;
    if ((src = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
        *bytes = (uint64_t)sqlite3_column_int64(st, 0);
        const unsigned char *s = sqlite3_column_text(st, 1);
        if (source && cap)
            snprintf(source, cap, "%s", s ? (const char *)s : "");
        rc = 0;
    } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = db_fail(h, src, "reading the context sizes");
    }
    vram__sqlite_done_with(st);
    pthread_mutex_unlock(&h->lock);
    return rc == VRAM_ENOENT ? vram__fail(VRAM_ENOENT, "no context size measured for %s", key) : rc;
}

int vram__history_context_learn(vram_history *h, const char *key, uint64_t bytes, const char *source)
{
    if (!h || !key || !source || !bytes || bytes > INT64_MAX)
        return vram__fail(VRAM_EINVAL, "vram__history_context_learn: NULL argument or no bytes");
    bool exact = !strcmp(source, "shim");
    /* An upper bound replaces nothing exact, and lowers only a larger bound. */
    const char *sql = exact
        ? "INSERT INTO contexts(key, bytes, source, unix_ms) VALUES(?1, ?2, ?3, ?4) "
          "ON CONFLICT(key) DO UPDATE SET bytes = excluded.bytes, source = excluded.source, "
          "unix_ms = excluded.unix_ms"
        : "INSERT INTO contexts(key, bytes, source, unix_ms) VALUES(?1, ?2, ?3, ?4) "
          "ON CONFLICT(key) DO UPDATE SET bytes = excluded.bytes, unix_ms = excluded.unix_ms "
          "WHERE contexts.source <> 'shim' AND contexts.bytes > excluded.bytes";
    pthread_mutex_lock(&h->lock);
    int src = vram__sqlite_prepared(h->db, &h->context_set[exact], sql);
    if (src == SQLITE_OK) {
        sqlite3_stmt *st = h->context_set[exact];
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)bytes);
        sqlite3_bind_text(st, 3, source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)vram__unix_ms());
        src = sqlite3_step(st);
        vram__sqlite_done_with(st);
    }
    int rc = src == SQLITE_DONE ? 0 : db_fail(h, src, "keeping a context size");
    pthread_mutex_unlock(&h->lock);
    return rc;
}
