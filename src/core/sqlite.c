/* SPDX-License-Identifier: MIT */
/*
 * core/sqlite.c - loads libsqlite3 on first use and fills core/sqlite.h's
 * table of calls, and keeps the statements its users prepare once.  Never
 * unloaded (RTLD_NODELETE): open databases belong to it for the rest of the
 * process.
 */
#define VRAM__SQLITE_TABLE
#include "core/sqlite.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "core/core.h"

struct vram__sqlite_calls vram__sqlite;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char missing[200];           /* why it could not be loaded; "" when it was */

static void load(void)
{
    static const char *const names[] = { "libsqlite3.so.0", "libsqlite3.so" };
    void *lib = NULL;
    for (size_t i = 0; !lib && i < sizeof(names) / sizeof(names[0]); i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!lib) {
        snprintf(missing, sizeof(missing), "%s", dlerror());
        return;
    }
    struct vram__sqlite_calls got;
#define RESOLVE(sym)                                                          \
    if (!(*(void **)&got.sym = dlsym(lib, #sym))) {                           \
        snprintf(missing, sizeof(missing), "libsqlite3 lacks %s", #sym);      \
        return;                                                               \
    }
    VRAM__SQLITE_CALLS(RESOLVE)
#undef RESOLVE
    vram__sqlite = got;
}

int vram__sqlite_ready(void)
{
    pthread_once(&once, load);
    if (*missing)
        return vram__fail(VRAM_ENOLIB, "the job store and the run history need SQLite 3 "
                          "(Debian: libsqlite3-0): %s", missing);
    return 0;
}

/* The table's calls by name here, where they are not redirected. */
int vram__sqlite_prepared(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
    return *st ? SQLITE_OK : vram__sqlite.sqlite3_prepare_v2(db, sql, -1, st, NULL);
}

void vram__sqlite_done_with(sqlite3_stmt *st)
{
    if (st) {
        vram__sqlite.sqlite3_reset(st);
        vram__sqlite.sqlite3_clear_bindings(st);
    }
}

int vram__sqlite_step_cached(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
    int src = vram__sqlite_prepared(db, st, sql);
    if (src != SQLITE_OK)
        return src;
    src = vram__sqlite.sqlite3_step(*st);
    vram__sqlite.sqlite3_reset(*st);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}
