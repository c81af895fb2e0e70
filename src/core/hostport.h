/* SPDX-License-Identifier: MIT */
/*
 * core/hostport.h - "ADDR:PORT" as a person writes it, for listening sockets.
 */
#ifndef VRAM_CORE_HOSTPORT_H
#define VRAM_CORE_HOSTPORT_H

#include <sys/socket.h>

#include "core/core.h"

typedef struct vram__hostport {
    struct sockaddr_storage addr;   /* ready for bind() */
    socklen_t addr_len;
    char host[64];                  /* the address as written back: "127.0.0.1", "::1" */
    unsigned port;                  /* 0: any free port */
    bool loopback;                  /* 127.0.0.0/8 or ::1 */
} vram__hostport;

/* Parses "127.0.0.1:7860", "[::1]:7860", "localhost:7860" (127.0.0.1) or
 * "*:7860" (every IPv4 address).  Only literal addresses: nothing is looked
 * up in DNS.  VRAM_EINVAL names the text and what is accepted. */
int vram__hostport_parse(const char *text, vram__hostport *out);

#endif /* VRAM_CORE_HOSTPORT_H */
