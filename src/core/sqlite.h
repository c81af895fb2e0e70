/* SPDX-License-Identifier: MIT */
/*
 * core/sqlite.h - SQLite, loaded when the first store opens.
 *
 * Only the daemon's job store (wire/queue.c) and the run history
 * (runner/history.c) use SQLite, so libvram and the `vram` command do not
 * link it: a client command (`vram submit`, `vram queue`, the Python
 * binding) never loads it.  A file that uses SQLite includes this header
 * instead of <sqlite3.h> and calls vram__sqlite_ready() before it opens a
 * database; its sqlite3_* calls then go through the table below, filled
 * once per process with dlopen.  A call this list lacks fails to link
 * (libvram links with --no-undefined): add it here.
 */
#ifndef VRAM_CORE_SQLITE_H
#define VRAM_CORE_SQLITE_H

#include <sqlite3.h>

#define VRAM__SQLITE_CALLS(X)                                                \
    X(sqlite3_open_v2) X(sqlite3_close) X(sqlite3_busy_timeout)             \
    X(sqlite3_exec) X(sqlite3_prepare_v2) X(sqlite3_step) X(sqlite3_reset)  \
    X(sqlite3_finalize) X(sqlite3_clear_bindings) X(sqlite3_bind_int)       \
    X(sqlite3_bind_int64) X(sqlite3_bind_text) X(sqlite3_bind_null)         \
    X(sqlite3_bind_double) X(sqlite3_column_int) X(sqlite3_column_int64)    \
    X(sqlite3_column_text) X(sqlite3_column_double) X(sqlite3_column_type)  \
    X(sqlite3_column_bytes) X(sqlite3_changes) X(sqlite3_last_insert_rowid) \
    X(sqlite3_errmsg) X(sqlite3_errstr) X(sqlite3_errcode)                  \
    X(sqlite3_extended_errcode) X(sqlite3_get_autocommit) X(sqlite3_free)   \
    X(sqlite3_wal_checkpoint_v2)

struct vram__sqlite_calls {
#define VRAM__SQLITE_MEMBER(sym) __typeof__(sym) *sym;
    VRAM__SQLITE_CALLS(VRAM__SQLITE_MEMBER)
#undef VRAM__SQLITE_MEMBER
};
extern struct vram__sqlite_calls vram__sqlite;

/* Loads libsqlite3 once per process (thread-safe).  Returns 0, or
 * VRAM_ENOLIB naming the library and what went wrong. */
int vram__sqlite_ready(void);

/* Statements kept for a connection's life, as the paths every job takes
 * use them (parsing SQL there was a twentieth of vramd's CPU, and half of
 * a history write): prepared the first time, finalized when the
 * connection closes.  vram__sqlite_prepared leaves *st ready to bind;
 * vram__sqlite_done_with resets it and clears its bindings (which may
 * borrow the caller's strings); vram__sqlite_step_cached runs one of no
 * result (BEGIN, COMMIT).  They return SQLite's codes. */
int vram__sqlite_prepared(sqlite3 *db, sqlite3_stmt **st, const char *sql);
void vram__sqlite_done_with(sqlite3_stmt *st);
int vram__sqlite_step_cached(sqlite3 *db, sqlite3_stmt **st, const char *sql);

/* Every sqlite3_* call below this header goes through the table. */
#ifndef VRAM__SQLITE_TABLE
#define VRAM__SQLITE_REDIRECT
#define sqlite3_open_v2 (vram__sqlite.sqlite3_open_v2)
#define sqlite3_close (vram__sqlite.sqlite3_close)
#define sqlite3_busy_timeout (vram__sqlite.sqlite3_busy_timeout)
#define sqlite3_exec (vram__sqlite.sqlite3_exec)
#define sqlite3_prepare_v2 (vram__sqlite.sqlite3_prepare_v2)
#define sqlite3_step (vram__sqlite.sqlite3_step)
#define sqlite3_reset (vram__sqlite.sqlite3_reset)
#define sqlite3_finalize (vram__sqlite.sqlite3_finalize)
#define sqlite3_clear_bindings (vram__sqlite.sqlite3_clear_bindings)
#define sqlite3_bind_int (vram__sqlite.sqlite3_bind_int)
#define sqlite3_bind_int64 (vram__sqlite.sqlite3_bind_int64)
#define sqlite3_bind_text (vram__sqlite.sqlite3_bind_text)
#define sqlite3_bind_null (vram__sqlite.sqlite3_bind_null)
#define sqlite3_bind_double (vram__sqlite.sqlite3_bind_double)
#define sqlite3_column_int (vram__sqlite.sqlite3_column_int)
#define sqlite3_column_int64 (vram__sqlite.sqlite3_column_int64)
#define sqlite3_column_text (vram__sqlite.sqlite3_column_text)
#define sqlite3_column_double (vram__sqlite.sqlite3_column_double)
#define sqlite3_column_type (vram__sqlite.sqlite3_column_type)
#define sqlite3_column_bytes (vram__sqlite.sqlite3_column_bytes)
#define sqlite3_changes (vram__sqlite.sqlite3_changes)
#define sqlite3_last_insert_rowid (vram__sqlite.sqlite3_last_insert_rowid)
#define sqlite3_errmsg (vram__sqlite.sqlite3_errmsg)
#define sqlite3_errstr (vram__sqlite.sqlite3_errstr)
#define sqlite3_errcode (vram__sqlite.sqlite3_errcode)
#define sqlite3_extended_errcode (vram__sqlite.sqlite3_extended_errcode)
#define sqlite3_get_autocommit (vram__sqlite.sqlite3_get_autocommit)
#define sqlite3_free (vram__sqlite.sqlite3_free)
#define sqlite3_wal_checkpoint_v2 (vram__sqlite.sqlite3_wal_checkpoint_v2)
#endif

#endif
