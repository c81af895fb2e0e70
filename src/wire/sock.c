/* SPDX-License-Identifier: MIT */
/*
 * wire/sock.c - the daemon's Unix socket, both ends.
 *
 * One daemon per socket: a path where a daemon answers is refused ("a
 * daemon already runs"), a path left by a dead one is a stale file and is
 * replaced.  The socket is owner-only (0600) unless a group is named (0660
 * and that group).  Clients connect, send a request line and read a reply
 * line; the peer's pid and uid come from SO_PEERCRED, which is what leases
 * are tied to; where the kernel keeps the peer's process (SO_PEERPIDFD), it
 * tells the process that connected from a later one with its number.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "wire/sock.h"

static int fill_address(const char *path, struct sockaddr_un *a)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (!path || !*path)
        return vram__fail(VRAM_EINVAL, "no socket path");
    if (strlen(path) >= sizeof(a->sun_path))
        return vram__fail(VRAM_EINVAL, "socket path '%s' is too long for a Unix socket (at most %zu bytes)",
                          path, sizeof(a->sun_path) - 1);
    memcpy(a->sun_path, path, strlen(path) + 1);
    return 0;
}

int vram__sock_default_path(char *buf, size_t cap)
{
    /* The "socket" option, read here from the environment too: clients
     * opened without options (the Python binding, vram run) find it. */
    const char *env = getenv("VRAM_SOCKET");
    const char *run = getenv("XDG_RUNTIME_DIR");
    const char *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, cap, "%s", env);
    else if (run && *run)
        snprintf(buf, cap, "%s/vram/vramd.sock", run);
    else if (home && *home)
        snprintf(buf, cap, "%s/.local/state/vram/vramd.sock", home);
    else
        return vram__fail(VRAM_EINVAL, "no XDG_RUNTIME_DIR or HOME: give --socket PATH");
    return 0;
}

int vram__sock_connect(const char *path, int *fd_out)
{
    *fd_out = -1;
    struct sockaddr_un a;
    int rc = fill_address(path, &a);
    if (rc)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vram__fail(VRAM_EIO, "cannot make a socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            return vram__fail(VRAM_ENOENT, "no daemon answers at %s (start one with 'vram serve')", path);
        if (e == EACCES)
            return vram__fail(VRAM_EPERM, "no permission to reach the daemon at %s", path);
        return vram__fail(VRAM_EIO, "cannot reach the daemon at %s: %s", path, strerror(e));
    }
    *fd_out = fd;
    return 0;
}

/* Makes the folder that will hold the socket, owner-only. */
static int make_folder(const char *path)
{
    char dir[4096];
    vram__strlcpy(dir, path, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; ; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return vram__fail(VRAM_EIO, "cannot create %s: %s", dir, strerror(errno));
            if (end)
                break;
            *p = '/';
        }
    }
    return 0;
}

int vram__sock_listen(const char *path, const char *group, int *fd_out)
{
    *fd_out = -1;
    struct sockaddr_un a;
    int rc = fill_address(path, &a);
    if (rc || (rc = make_folder(path)))
        return rc;
    gid_t gid = (gid_t)-1;
    if (group && *group) {
        struct group *g = getgrnam(group);
        if (!g)
            return vram__fail(VRAM_EINVAL, "no group '%s' for the socket", group);
        gid = g->gr_gid;
    }
    int probe;
    if (vram__sock_connect(path, &probe) == 0) {
        close(probe);
        return vram__fail(VRAM_EBUSY, "a daemon already runs at %s", path);
    }
    vram__clear_error();
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return vram__fail(VRAM_EINVAL, "%s exists and is not a socket; refusing to replace it", path);
        unlink(path);               /* left by a daemon that died: stale */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return vram__fail(VRAM_EIO, "cannot make a socket: %s", strerror(errno));
    mode_t old = umask(0177);       /* no window where others could connect */
    int b = bind(fd, (struct sockaddr *)&a, sizeof(a));
    umask(old);
    if (b != 0 || listen(fd, 128) != 0) {
        rc = vram__fail(errno == EADDRINUSE ? VRAM_EBUSY : VRAM_EIO, "cannot listen on %s: %s", path,
                        strerror(errno));
        close(fd);
        return rc;
    }
    if (gid != (gid_t)-1 && (chown(path, (uid_t)-1, gid) != 0 || chmod(path, 0660) != 0)) {
        rc = vram__fail(VRAM_EPERM, "cannot give %s to group %s: %s", path, group, strerror(errno));
        close(fd);
        unlink(path);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int vram__sock_peer(int fd, uint32_t *pid, uint32_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return vram__fail(VRAM_EIO, "cannot read the peer's credentials: %s", strerror(errno));
    *pid = (uint32_t)cred.pid;
    *uid = (uint32_t)cred.uid;
    return 0;
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77             /* Linux 6.5; the same on every architecture but a few */
#endif

int vram__sock_peer_alive(int fd, int *pidfd)
{
    if (*pidfd < 0) {
        int got = -1;
        socklen_t len = sizeof(got);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &got, &len) != 0)
            /* No pidfd for a process already reaped (EINVAL; ESRCH on newer
             * kernels); ENOPROTOOPT: a kernel without SO_PEERPIDFD. */
            return errno == EINVAL || errno == ESRCH ? 0 : -1;
        *pidfd = got;               /* close-on-exec, as every pidfd */
    }
#ifdef SYS_pidfd_send_signal
    /* Signal 0 checks and sends nothing; EPERM: there, and another user's. */
    if (syscall(SYS_pidfd_send_signal, *pidfd, 0, NULL, 0) != 0 && errno == ESRCH)
        return 0;
#endif
    return 1;
}

/* ---- client calls --------------------------------------------------------------------- */

int vram__sock_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = { fd, POLLOUT, 0 };
            poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0)
            return vram__fail(VRAM_EIO, "the daemon closed the connection: %s", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int vram__sock_read_line(int fd, vram__buf *pending, int timeout_ms, char **line_out)
{
    *line_out = NULL;
    size_t from = 0;                /* looked for a newline up to here: a long reply is scanned once */
    for (;;) {
        char *nl = pending->len > from ? memchr(pending->data + from, '\n', pending->len - from) : NULL;
        if (nl && nl + 1 == pending->data + pending->len) {
            *nl = '\0';             /* all that came is the line: handed over, not copied */
            *line_out = pending->data;
            vram__buf_init(pending);
            return 0;
        }
        if (nl) {
            size_t n = (size_t)(nl - pending->data);
            char *line = malloc(n + 1);
            if (!line)
                return vram__fail(VRAM_ENOMEM, "out of host memory");
            memcpy(line, pending->data, n);
            line[n] = '\0';
            memmove(pending->data, nl + 1, pending->len - n - 1);
            pending->len -= n + 1;
            pending->data[pending->len] = '\0';
            *line_out = line;
            return 0;
        }
        from = pending->len;
        if (pending->len > (size_t)64 << 20)
            return vram__fail(VRAM_ERANGE, "a reply line over 64 MiB");
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, timeout_ms);
        if (r == 0)
            return vram__fail(VRAM_ETIMEDOUT, "the daemon did not answer in %d ms", timeout_ms);
        if (r < 0 && errno == EINTR)
            return vram__fail(VRAM_ECANCELED, "interrupted");
        char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            return vram__fail(VRAM_ECANCELED, "interrupted");
        if (n <= 0)
            return vram__fail(VRAM_EIO, "the daemon closed the connection");
        vram__buf_put(pending, chunk, (size_t)n);
        if (pending->failed)
            return vram__fail(VRAM_ENOMEM, "out of host memory");
    }
}
