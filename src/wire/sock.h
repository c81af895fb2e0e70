/* SPDX-License-Identifier: MIT */
/*
 * wire/sock.h - the daemon's Unix socket, both ends (see sock.c).
 */
#ifndef VRAM_WIRE_SOCK_H
#define VRAM_WIRE_SOCK_H

#include "core/core.h"

/* VRAM_SOCKET, else $XDG_RUNTIME_DIR/vram/vramd.sock, else
 * ~/.local/state/vram/vramd.sock. */
int vram__sock_default_path(char *buf, size_t cap);

/* Listens at path: VRAM_EBUSY when a daemon answers there, a stale socket
 * file is replaced, anything else at the path is refused.  Owner-only, or
 * 0660 for `group`.  The fd is non-blocking and close-on-exec. */
int vram__sock_listen(const char *path, const char *group, int *fd_out);

/* VRAM_ENOENT when no daemon answers at path. */
int vram__sock_connect(const char *path, int *fd_out);

/* The connected peer's pid and uid (SO_PEERCRED). */
int vram__sock_peer(int fd, uint32_t *pid, uint32_t *uid);

/* Whether the very process that connected is still there (1), has ended
 * (0), or the kernel cannot say (-1: before Linux 6.5).  The socket keeps
 * that process, not its number (SO_PEERPIDFD): a later process given the
 * same pid is not it.  *pidfd keeps its pidfd for the next asking (-1 the
 * first time; the caller closes it with the socket). */
int vram__sock_peer_alive(int fd, int *pidfd);

/* Sends all of data (handles short writes and EAGAIN; never SIGPIPE). */
int vram__sock_send_all(int fd, const char *data, size_t len);

/* Reads until a whole line is in `pending` and hands it over (malloc'd,
 * without its newline); the rest stays in pending for the next call. */
int vram__sock_read_line(int fd, vram__buf *pending, int timeout_ms, char **line_out);

#endif
