/* SPDX-License-Identifier: MIT */
/*
 * daemon/systemd.c - vramd under systemd: the listening socket systemd may
 * hand over (socket activation) and the readiness it waits for (Type=notify).
 *
 * Owns nothing but those two conversations.  libsystemd is loaded at run time
 * (sd_listen_fds, sd_notify), so that neither vram nor a machine without
 * systemd needs it; where it cannot be loaded, vramd listens and starts as it
 * always does.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/core.h"
#include "daemon/daemon.h"

#define SD_LISTEN_FDS_START 3

typedef int (*sd_listen_fds_fn)(int unset_environment);
typedef int (*sd_notify_fn)(int unset_environment, const char *state);

static void *libsystemd(void)
{
    /* Only where systemd started us: it sets one of these. */
    if (!getenv("LISTEN_FDS") && !getenv("NOTIFY_SOCKET"))
        return NULL;
    return dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
}

int vramd_systemd_listen_fd(int *fd_out)
{
    *fd_out = -1;
    void *lib = libsystemd();
    if (!lib)
        return 0;
    sd_listen_fds_fn listen_fds = (sd_listen_fds_fn)dlsym(lib, "sd_listen_fds");
    int n = listen_fds ? listen_fds(1) : 0;
    dlclose(lib);
    if (n <= 0)
        return 0;
    if (n > 1)
        return vram__fail(VRAM_EINVAL, "systemd handed vramd %d sockets; its unit must listen on one", n);
    struct stat st;
    int type = 0;
    socklen_t len = sizeof(type);
    if (fstat(SD_LISTEN_FDS_START, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(SD_LISTEN_FDS_START, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
        return vram__fail(VRAM_EINVAL, "the socket systemd handed vramd is not a stream socket "
                          "(ListenStream= in vramd.socket)");
    /* As vram__sock_listen makes its own: the loop accepts until EAGAIN, and
     * no runner inherits the socket. */
    int fl = fcntl(SD_LISTEN_FDS_START, F_GETFL);
    if (fl < 0 || fcntl(SD_LISTEN_FDS_START, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC) != 0)
        return vram__fail(VRAM_EIO, "cannot set up the socket systemd handed vramd");
    *fd_out = SD_LISTEN_FDS_START;
    return 0;
}

void vramd_systemd_notify(const char *state)
{
    void *lib = libsystemd();
    if (!lib)
        return;
    sd_notify_fn notify = (sd_notify_fn)dlsym(lib, "sd_notify");
    if (notify)
        notify(0, state);
    dlclose(lib);
}
