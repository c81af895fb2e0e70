/* SPDX-License-Identifier: MIT */
/*
 * core/util.c - small shared tools: the growable string buffer, the JSON
 * writer, making folders, clocks and the stderr logger.
 *
 * Nothing here knows about devices; every module leans on it.
 */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>
#include <linux/sched.h>            /* struct clone_args, CLONE_INTO_CGROUP */
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL  /* Linux 5.5: handled signals start as SIG_DFL */
#endif

#include "core/core.h"
#include "core/exports.h"

/* ---- string buffer ------------------------------------------------------- */

void vram__buf_init(vram__buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void vram__buf_free(vram__buf *b)
{
    free(b->data);
    vram__buf_init(b);
}

static bool buf_reserve(vram__buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void vram__buf_put(vram__buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void vram__buf_puts(vram__buf *b, const char *s)
{
    vram__buf_put(b, s, strlen(s));
}

void vram__buf_vprintf(vram__buf *b, const char *fmt, va_list ap)
{
    va_list copy;

    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void vram__buf_printf(vram__buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vram__buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *vram__buf_take(vram__buf *b, int *err)
{
    if (!b->failed && !b->data)
        buf_reserve(b, 0);
    if (b->failed) {
        vram__buf_free(b);
        if (err)
            *err = vram__fail(VRAM_ENOMEM, "out of host memory building text");
        return NULL;
    }
    if (b->len == 0)
        b->data[0] = '\0';
    char *s = b->data;
    vram__buf_init(b);
    if (err)
        *err = 0;
    return s;
}

void vram__strlcpy(char *dst, const char *src, size_t cap)
{
    if (cap == 0)
        return;
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

char *vram__trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* ---- JSON writer ----------------------------------------------------------- */

void vram__json_init(vram__json *j, vram__buf *out)
{
    j->out = out;
    j->depth = 0;
    j->need_comma[0] = false;
}

/* Before any value or key: a comma when a sibling came before.  A value
 * right after its key needs none; the key call leaves need_comma false. */
static void json_sep(vram__json *j)
{
    if (j->need_comma[j->depth])
        vram__buf_put(j->out, ",", 1);
    j->need_comma[j->depth] = true;
}

static void json_open(vram__json *j, char c)
{
    json_sep(j);
    vram__buf_put(j->out, &c, 1);
    if (j->depth + 1 < (int)VRAM__ARRAY_LEN(j->need_comma))
        j->depth++;
    j->need_comma[j->depth] = false;
}

static void json_close(vram__json *j, char c)
{
    if (j->depth > 0)
        j->depth--;
    vram__buf_put(j->out, &c, 1);
}

void vram__json_object_begin(vram__json *j) { json_open(j, '{'); }
void vram__json_object_end(vram__json *j) { json_close(j, '}'); }
void vram__json_array_begin(vram__json *j) { json_open(j, '['); }
void vram__json_array_end(vram__json *j) { json_close(j, ']'); }

void vram__json_escape(vram__buf *out, const char *s)
{
    vram__buf_put(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* Runs of characters that need no escape go in at once. */
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            vram__buf_put(out, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        switch (*p) {
        case '"':  vram__buf_puts(out, "\\\""); break;
        case '\\': vram__buf_puts(out, "\\\\"); break;
        case '\n': vram__buf_puts(out, "\\n"); break;
        case '\r': vram__buf_puts(out, "\\r"); break;
        case '\t': vram__buf_puts(out, "\\t"); break;
        default:
            if (*p < 0x20) {
                vram__buf_printf(out, "\\u%04x", *p);
            } else {
                /* JSON is Unicode: a character as written, a byte that
                 * starts none (a file name, an argv word) as U+FFFD. */
                size_t n = vram__utf8_len(p, SIZE_MAX);
                if (n)
                    vram__buf_put(out, (const char *)p, n), p += n - 1;
                else
                    vram__buf_puts(out, "\\ufffd");
            }
        }
    }
    vram__buf_put(out, "\"", 1);
}

void vram__json_key(vram__json *j, const char *key)
{
    json_sep(j);
    vram__json_escape(j->out, key);
    vram__buf_put(j->out, ":", 1);
    j->need_comma[j->depth] = false;
}

/* After a value inside an object or array, the next sibling needs a comma. */
static void json_value_done(vram__json *j)
{
    j->need_comma[j->depth] = true;
}

void vram__json_string(vram__json *j, const char *s)
{
    json_sep(j);
    vram__json_escape(j->out, s ? s : "");
    json_value_done(j);
}

/* Digits of v, without printf: lists of thousands of jobs are mostly numbers. */
static void put_uint(vram__buf *b, uint64_t v, bool negative)
{
    char digits[24];
    size_t n = sizeof(digits);
    do
        digits[--n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    if (negative)
        digits[--n] = '-';
    vram__buf_put(b, digits + n, sizeof(digits) - n);
}

void vram__json_uint(vram__json *j, uint64_t v)
{
    json_sep(j);
    put_uint(j->out, v, false);
    json_value_done(j);
}

void vram__json_int(vram__json *j, int64_t v)
{
    json_sep(j);
    put_uint(j->out, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
    json_value_done(j);
}

void vram__json_double(vram__json *j, double v)
{
    json_sep(j);
    if (isfinite(v))
        vram__buf_printf(j->out, "%.6g", v);
    else
        vram__buf_puts(j->out, "null");
    json_value_done(j);
}

void vram__json_bool(vram__json *j, bool v)
{
    json_sep(j);
    vram__buf_puts(j->out, v ? "true" : "false");
    json_value_done(j);
}

void vram__json_null(vram__json *j)
{
    json_sep(j);
    vram__buf_puts(j->out, "null");
    json_value_done(j);
}

void vram__json_field_string(vram__json *j, const char *key, const char *s)
{
    vram__json_key(j, key);
    vram__json_string(j, s);
}

void vram__json_field_uint(vram__json *j, const char *key, uint64_t v)
{
    vram__json_key(j, key);
    vram__json_uint(j, v);
}

void vram__json_field_int(vram__json *j, const char *key, int64_t v)
{
    vram__json_key(j, key);
    vram__json_int(j, v);
}

void vram__json_field_double(vram__json *j, const char *key, double v)
{
    vram__json_key(j, key);
    vram__json_double(j, v);
}

void vram__json_field_bool(vram__json *j, const char *key, bool v)
{
    vram__json_key(j, key);
    vram__json_bool(j, v);
}

void vram__json_raw(vram__json *j, const char *text)
{
    json_sep(j);
    vram__buf_puts(j->out, text);
    json_value_done(j);
}

/* ---- files ---------------------------------------------------------------- */

int vram__make_parent_dirs(const char *path)
{
    char dir[4096];
    vram__strlcpy(dir, path, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return vram__fail(VRAM_EIO, "cannot create %s: %s", dir, strerror(errno));
        if (!c)
            return 0;
        *p = c;
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *at)
{
    (void)st;
    (void)flag;
    (void)at;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int vram__remove_tree(const char *path)
{
    /* Depth first, links not followed: what a link points at stays. */
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT ? -1 : 0;
}

/* ---- time ------------------------------------------------------------------ */

uint64_t vram__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t vram__now_ms(void)
{
    return vram__now_ns() / 1000000ull;
}

uint64_t vram__unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

void vram__sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- logging ---------------------------------------------------------------- */

static int log_level(void)
{
    static int level = -1;          /* read once; races only rewrite the same value */
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l >= 0)
        return l;
    const char *env = getenv("VRAM_LOG");
    l = VRAM__LOG_WARN;
    if (env) {
        if (!strcmp(env, "error")) l = VRAM__LOG_ERROR;
        else if (!strcmp(env, "info")) l = VRAM__LOG_INFO;
        else if (!strcmp(env, "debug")) l = VRAM__LOG_DEBUG;
    }
    __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    return l;
}

FILE *vram_file_open_read(const char *path)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        errno = EISDIR;
        return NULL;
    }
    return f;
}

void vram__say(vram_say_fn say, void *user, const char *fmt, ...)
{
    if (!say)
        return;
    char line[1024], shown[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* A line is one line: what it quotes (a command, a path, a runner's
     * word) never moves a terminal's cursor or forges another line. */
    say(user, vram_text_escape(line, shown, sizeof(shown)));
}

void vram__log(int level, const char *fmt, ...)
{
    if (level > log_level())
        return;
    char line[1024], shown[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vram: %s\n", vram_text_escape(line, shown, sizeof(shown)));
}

/* ---- processes -------------------------------------------------------------- */

pid_t vram__fork_clean_into(int cgroup_fd, bool *into)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = -1;
    bool cleared = false;           /* the kernel reset the child's handlers */
    *into = false;
#if defined(SYS_clone3) && defined(CLONE_INTO_CGROUP)
    if (cgroup_fd >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof(args));
        args.flags = CLONE_INTO_CGROUP | CLONE_CLEAR_SIGHAND;
        args.exit_signal = SIGCHLD;
        args.cgroup = (uint64_t)cgroup_fd;
        pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        cleared = pid >= 0;
        if (pid < 0 && errno == EINVAL) {   /* a kernel before 5.5: handlers reset below */
            args.flags = CLONE_INTO_CGROUP;
            pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        }
        *into = pid >= 0;
    }
#else
    (void)cgroup_fd;
#endif
    if (pid < 0)
        pid = fork();               /* no clone3, or not into that cgroup: the child joins it itself */
    int e = errno;
    if (pid == 0 && !cleared) {     /* one sigaction a signal: 128 calls the kernel saves above */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction now;
            if (sigaction(sig, NULL, &now) == 0 && now.sa_handler != SIG_DFL && now.sa_handler != SIG_IGN)
                sigaction(sig, &dfl, NULL);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return pid;
}

pid_t vram__fork_clean(void)
{
    bool into;
    return vram__fork_clean_into(-1, &into);
}
