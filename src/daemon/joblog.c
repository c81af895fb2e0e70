/* SPDX-License-Identifier: MIT */
/*
 * daemon/joblog.c - a job's output for `vram log`: the log op's reply.
 *
 * Owns reading a job's log from an offset, in chunks, for its owner (or
 * root: authz.c decides).  The log is opened without following links and
 * read only when it is a plain file with one link owned by the user the job
 * ran as, so a name planted where the log lives cannot make vramd read a
 * file that user could not read anyway.  A job with --output has no log here: the reply
 * names its file, which the command reads as the user who asks.  Bytes go
 * as base64 (a log is any bytes: NULs, broken UTF-8, escape codes); the
 * command decides how to show them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

static void base64(vram__buf *b, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char quad[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        quad[0] = abc[v >> 18 & 63];
        quad[1] = abc[v >> 12 & 63];
        quad[2] = i + 1 < n ? abc[v >> 6 & 63] : '=';
        quad[3] = i + 2 < n ? abc[v & 63] : '=';
        vram__buf_put(b, quad, 4);
    }
}

int vramd_job_log_json(vramd *d, const vramd_job *j, uint64_t offset, vram__json *o)
{
    const vram__job *r = &j->row;
    bool ended = vramd_state_final(r->state);
    vram__json_field_uint(o, "job", r->id);
    vram__json_field_string(o, "state", vram__job_state_name(r->state));
    vram__json_field_bool(o, "ended", ended);
    if (r->output && *r->output) {
        vram__json_field_string(o, "output", r->output);
        return 0;
    }
    char path[4300];
    int rc = vramd_job_log_path(d, j, path, sizeof(path));
    if (rc)
        return rc;
    unsigned char *chunk = NULL;
    ssize_t got = 0;
    uint64_t size = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno != ENOENT)  /* none yet: a job that has not started */
        return vram__fail(VRAM_EIO, "cannot read job %llu's log: %s", (unsigned long long)r->id, strerror(errno));
    if (fd >= 0) {
        struct stat st;
        /* A root vramd reads for the job's user only a file that user owns
         * (one they could read anyway, wherever the log lives); a vramd of
         * one user only what that user, who ran the job, owns. */
        uid_t ran_as = geteuid() == 0 ? (uid_t)r->owner_uid : geteuid();
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != ran_as) {
            close(fd);
            return vram__fail(VRAM_EPERM, "job %llu's log is not a file vramd wrote: not read",
                              (unsigned long long)r->id);
        }
        size = (uint64_t)st.st_size;
        if (offset < size) {
            size_t want = size - offset < VRAMD_LOG_CHUNK ? (size_t)(size - offset) : VRAMD_LOG_CHUNK;
            chunk = malloc(want);
            got = chunk ? pread(fd, chunk, want, (off_t)offset) : -1;
        }
        close(fd);
        if (got < 0) {
            free(chunk);
            return vram__fail(chunk ? VRAM_EIO : VRAM_ENOMEM, "cannot read job %llu's log",
                              (unsigned long long)r->id);
        }
    }
    vram__json_field_string(o, "log", path);     /* as in queue --json: vram log --follow watches it */
    vram__json_field_uint(o, "offset", offset + (uint64_t)got);
    vram__json_field_uint(o, "size", size > offset + (uint64_t)got ? size : offset + (uint64_t)got);
    vram__buf enc;
    vram__buf_init(&enc);
    base64(&enc, chunk, (size_t)got);
    vram__buf_put(&enc, "", 1);
    free(chunk);
    if (enc.failed) {
        vram__buf_free(&enc);
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
    vram__json_field_string(o, "data_base64", enc.data);
    vram__buf_free(&enc);
    return 0;
}
