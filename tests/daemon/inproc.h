/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/inproc.h - a vramd run in a thread of a C test, on a
 * simulated 24 GiB card with its files in a folder of its own: the options
 * test_owner_group, test_shim_sums and test_daemon_threads share, the
 * thread's body, and a free port for its HTTP side.
 */
#ifndef VRAM_TESTS_DAEMON_INPROC_H
#define VRAM_TESTS_DAEMON_INPROC_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* A port no one listens on now (the kernel's pick); -1 when none. */
static inline int inproc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* The daemon's thread: arg is its vram_daemon_config. */
static inline void *inproc_daemon_main(void *arg)
{
    return (void *)(intptr_t)vram_daemon_run(arg);
}

/* The options every such vramd shares: the simulated card, its state,
 * queue and token in dir (state/ made here), no history, the socket and
 * the HTTP address (host:port) given.  0, or the first option's error. */
static inline int inproc_options(vram_options *o, const char *dir, const char *socket, const char *http)
{
    char state[160], db[160], token[160];
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(db, sizeof(db), "%s/queue.db", dir);
    snprintf(token, sizeof(token), "%s/token", dir);
    mkdir(state, 0700);
    const char *const kv[][2] = { { "backend", "sim" }, { "sim", "G:24GiB" }, { "sim-state", state },
                                  { "socket", socket }, { "db", db }, { "history", "-" },
                                  { "http", http }, { "token-file", token } };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof(kv) / sizeof(kv[0]); i++)
        rc = vram_options_set(o, kv[i][0], kv[i][1], NULL);
    return rc;
}

#endif
