/* SPDX-License-Identifier: MIT */
/*
 * daemon/token.c - the secret that changes over HTTP must carry.
 *
 * Owns the token file: 32 random bytes from getrandom() as 64 hex digits,
 * written by the daemon at start, once its dashboard has its port, to a file
 * only its user can read, and read back (refusing a file others could read)
 * by whoever wants to change something.  Comparison takes the same time
 * wherever the texts differ.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/http.h"

int vram__token_path(const char *path, char *buf, size_t cap)
{
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    const char *home = getenv("HOME");
    int n;
    if (path && *path)
        n = snprintf(buf, cap, "%s", path);
    else if (runtime && *runtime)
        n = snprintf(buf, cap, "%s/vram/http-token", runtime);
    else if (home && *home)
        n = snprintf(buf, cap, "%s/.local/state/vram/http-token", home);
    else
        return vram__fail(VRAM_EINVAL, "no XDG_RUNTIME_DIR or HOME: give the token's path "
                          "(--token-file or VRAM_TOKEN_FILE)");
    if (n < 0 || (size_t)n >= cap)
        return vram__fail(VRAM_EINVAL, "the token's path is too long");
    return 0;
}

static int random_hex(char token[VRAM__TOKEN_LEN + 1])
{
    unsigned char raw[VRAM__TOKEN_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return vram__fail(VRAM_EIO, "getrandom failed: %s", strerror(errno));
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        token[2 * i] = hex[raw[i] >> 4];
        token[2 * i + 1] = hex[raw[i] & 15];
    }
    token[VRAM__TOKEN_LEN] = '\0';
    return 0;
}

/* Writes text to a new owner-only file beside path, then renames it over. */
static int write_private(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return vram__fail(errno == EACCES ? VRAM_EPERM : VRAM_EIO, "cannot create %s: %s", tmp,
                          strerror(errno));
    size_t len = strlen(text);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) == 0)
        return 0;
    if (ok)
        err = errno;
    unlink(tmp);
    return vram__fail(err == ENOSPC ? VRAM_ENOSPC : VRAM_EIO, "cannot write the token to %s: %s",
                      path, strerror(err));
}

int vram__token_new(char token[VRAM__TOKEN_LEN + 1])
{
    if (!token)
        return vram__fail(VRAM_EINVAL, "vram__token_new: no output");
    token[0] = '\0';
    int rc = random_hex(token);
    if (rc)
        token[0] = '\0';
    return rc;
}

int vram__token_write(const char *path, const char *token)
{
    if (!path || !*path || !token || strlen(token) != VRAM__TOKEN_LEN)
        return vram__fail(VRAM_EINVAL, "vram__token_write: no path or no token");
    int rc = vram__make_parent_dirs(path);
    if (rc)
        return rc;
    char line[VRAM__TOKEN_LEN + 2];
    snprintf(line, sizeof(line), "%s\n", token);
    return write_private(path, line);
}

int vram__token_create(const char *path, char token[VRAM__TOKEN_LEN + 1])
{
    if (!path || !*path || !token)
        return vram__fail(VRAM_EINVAL, "vram__token_create: no path or no output");
    int rc = vram__token_new(token);
    if (!rc)
        rc = vram__token_write(path, token);
    if (rc)
        token[0] = '\0';
    return rc;
}

static int check_private(const char *path, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return vram__fail(VRAM_EIO, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return vram__fail(VRAM_EPERM, "%s is not a regular file", path);
    if (st.st_uid != geteuid())
        return vram__fail(VRAM_EPERM, "%s belongs to user %u, not to this user (%u)", path,
                          (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return vram__fail(VRAM_EPERM, "%s may be read by others (mode %03o); a token file must "
                          "be 0600: chmod 600 it or restart the daemon", path,
                          (unsigned)(st.st_mode & 0777));
    return 0;
}

int vram__token_read(const char *path, char token[VRAM__TOKEN_LEN + 1])
{
    if (!path || !*path || !token)
        return vram__fail(VRAM_EINVAL, "vram__token_read: no path or no output");
    token[0] = '\0';
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return vram__fail(errno == ENOENT ? VRAM_ENOENT : errno == EACCES ? VRAM_EPERM : VRAM_EIO,
                          "cannot open the token file %s: %s", path, strerror(errno));
    char text[VRAM__TOKEN_LEN + 8];
    int rc = check_private(path, fd);
    ssize_t n = rc ? 0 : read(fd, text, sizeof(text) - 1);
    close(fd);
    if (rc)
        return rc;
    if (n < 0)
        return vram__fail(VRAM_EIO, "cannot read %s: %s", path, strerror(errno));
    text[n] = '\0';
    char *t = vram__trim(text);
    if (strlen(t) != VRAM__TOKEN_LEN || strspn(t, "0123456789abcdef") != VRAM__TOKEN_LEN)
        return vram__fail(VRAM_EPARSE, "%s does not hold a token (64 hex digits)", path);
    memcpy(token, t, VRAM__TOKEN_LEN + 1);
    return 0;
}

int vram__token_equal(const char *given, const char *want)
{
    if (!given || !want)
        return 0;
    size_t n = strlen(want), m = strlen(given);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(want[i] ^ (i < m ? given[i] : 0));
    return diff == 0;
}
