/* SPDX-License-Identifier: MIT */
/*
 * core/core.h - what every module of libvram shares and no user sees.
 *
 * Error reporting (vram__fail sets the thread's detail message and returns
 * the code), a growable string buffer, a JSON writer, clocks and logging.
 * Names are vram__ (shared between files, never exported).
 */
#ifndef VRAM_CORE_CORE_H
#define VRAM_CORE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/exports.h"
#include "vram.h"

#define VRAM__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define VRAM__PRINTF(f, a) __attribute__((format(printf, f, a)))

#define VRAM__KiB 1024ull
#define VRAM__MiB (1024ull * 1024ull)
#define VRAM__GiB (1024ull * 1024ull * 1024ull)

/* ---- errors ---------------------------------------------------------- */

/* Records a detail message for vram_last_error() and returns err. */
int vram__fail(int err, const char *fmt, ...) VRAM__PRINTF(2, 3);

/* Checks the version field of a growing input struct (see vram.h): 0 and
 * 1..known are fine; a newer one is VRAM_EINVAL naming the struct, made by
 * a program built against a newer vram.h than this library. */
int vram__check_version(const char *type, unsigned version, unsigned known);

/* Clears the detail (for calls that try several things and succeed). */
void vram__clear_error(void);

/* ---- strings ------------------------------------------------------------ */

typedef struct vram__buf {
    char *data;                     /* always NUL-terminated once used */
    size_t len, cap;
    bool failed;                    /* an allocation failed: contents partial */
} vram__buf;

void vram__buf_init(vram__buf *b);
void vram__buf_free(vram__buf *b);
void vram__buf_put(vram__buf *b, const char *s, size_t n);
void vram__buf_puts(vram__buf *b, const char *s);
void vram__buf_printf(vram__buf *b, const char *fmt, ...) VRAM__PRINTF(2, 3);
void vram__buf_vprintf(vram__buf *b, const char *fmt, va_list ap);
/* Hands the string over (caller frees with free/vram_free); the buffer is
 * emptied.  NULL and VRAM_ENOMEM via *err when an allocation failed. */
char *vram__buf_take(vram__buf *b, int *err);

/* strncpy that always terminates and never pads. */
void vram__strlcpy(char *dst, const char *src, size_t cap);

/* Trims spaces at both ends, in place; returns s. */
char *vram__trim(char *s);

/* ---- JSON writer ---------------------------------------------------------- */

/* Writes compact JSON into a vram__buf, placing commas itself.  Keys and
 * values alternate inside objects: vram__json_key() then one value call. */
typedef struct vram__json {
    vram__buf *out;
    int depth;
    bool need_comma[32];
} vram__json;

void vram__json_init(vram__json *j, vram__buf *out);
void vram__json_object_begin(vram__json *j);
void vram__json_object_end(vram__json *j);
void vram__json_array_begin(vram__json *j);
void vram__json_array_end(vram__json *j);
void vram__json_key(vram__json *j, const char *key);
void vram__json_string(vram__json *j, const char *s);
void vram__json_uint(vram__json *j, uint64_t v);
void vram__json_int(vram__json *j, int64_t v);
void vram__json_double(vram__json *j, double v);
void vram__json_bool(vram__json *j, bool v);
void vram__json_null(vram__json *j);
/* A key and its value in one call: the common case inside an object. */
void vram__json_field_string(vram__json *j, const char *key, const char *s);
void vram__json_field_uint(vram__json *j, const char *key, uint64_t v);
void vram__json_field_int(vram__json *j, const char *key, int64_t v);
void vram__json_field_double(vram__json *j, const char *key, double v);
void vram__json_field_bool(vram__json *j, const char *key, bool v);
/* Appends JSON text the caller already made valid (a nested document). */
void vram__json_raw(vram__json *j, const char *text);
/* The length of the valid UTF-8 character at s (1 for ASCII, up to 4), or
 * 0 when s does not start one within avail bytes (a stray continuation, an
 * overlong form, a surrogate, past U+10FFFF, cut short).  SIZE_MAX for a
 * NUL-terminated string: its NUL is never a continuation.  The one rule
 * the JSON reader and writer and the terminal escape share (escape.c). */
size_t vram__utf8_len(const unsigned char *s, size_t avail);
/* Whether all of s is valid UTF-8. */
bool vram__utf8_valid(const char *s);
/* JSON string escaping of s into out, with quotes; a byte that starts no
 * UTF-8 character becomes U+FFFD, so the text is always valid JSON. */
void vram__json_escape(vram__buf *out, const char *s);

/* ---- files ---------------------------------------------------------------- */

/* mkdir -p of the folder that will hold path; folders it makes are 0700. */
int vram__make_parent_dirs(const char *path);

/* rm -rf of path, without a shell and without following links: 0, or -1
 * with errno (the last error is left as it was, for a caller cleaning up). */
int vram__remove_tree(const char *path);

/* ---- processes ------------------------------------------------------------- */

/* fork() for a child that will exec: the child starts with every handled
 * signal back at its default action, so a signal sent to it before its exec
 * (a cancel of a job just starting) never runs a handler of ours in it -
 * vramd's would tell the daemon itself to stop.  Signals are blocked across
 * the fork; both sides get back the caller's mask.  errno as fork's. */
pid_t vram__fork_clean(void);
/* The same, the child created in the cgroup whose folder cgroup_fd is
 * (clone3's CLONE_INTO_CGROUP) when cgroup_fd >= 0 and the kernel can;
 * *into says whether it was (else it is a plain fork).  The child may
 * only call async-signal-safe functions until it execs. */
pid_t vram__fork_clean_into(int cgroup_fd, bool *into);

/* ---- time ----------------------------------------------------------------- */

uint64_t vram__now_ns(void);        /* CLOCK_MONOTONIC */
uint64_t vram__now_ms(void);
uint64_t vram__unix_ms(void);       /* CLOCK_REALTIME */
void vram__sleep_ms(unsigned ms);

/* ---- numbers ----------------------------------------------------------------- */

/* llround(x), exactly (halves away from zero), for |x| < 2^63.  The command
 * links no libm (its start is a client command's; see the Makefile): with
 * -fno-math-errno, sqrt, lrintf, floor and fabs are instructions, and the
 * few calls that are not have their own versions here and where used. */
static inline long long vram__llround(double x)
{
    long long t = (long long)x;     /* toward zero; x - t is exact */
    double f = x - (double)t;
    return t + (f >= 0.5) - (f <= -0.5);
}

/* ---- logging ---------------------------------------------------------------- */

enum { VRAM__LOG_ERROR, VRAM__LOG_WARN, VRAM__LOG_INFO, VRAM__LOG_DEBUG };

/* Writes "vram: <message>" to stderr when level is at or under the "log"
 * option's level (read once from VRAM_LOG; default warn). */
void vram__log(int level, const char *fmt, ...) VRAM__PRINTF(2, 3);

/* Formats one line and hands it to say (nothing when say is NULL): how the
 * runner and the daemon tell their operator. */
void vram__say(vram_say_fn say, void *user, const char *fmt, ...) VRAM__PRINTF(3, 4);

#endif /* VRAM_CORE_CORE_H */
