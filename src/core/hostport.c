/* SPDX-License-Identifier: MIT */
/*
 * core/hostport.c - parses the "ADDR:PORT" a listening socket is given.
 *
 * Owns the accepted forms and their messages; the options table checks
 * values with it and the HTTP server binds what it returns.  Names are
 * never resolved: "localhost" means 127.0.0.1, so that what is written is
 * exactly what is bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/hostport.h"

#define FORMS "give ADDR:PORT, e.g. 127.0.0.1:7860, [::1]:7860, localhost:7860 or *:7860"

static int parse_port(const char *text, const char *port, unsigned *out)
{
    if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
        return vram__fail(VRAM_EINVAL, "'%s': '%s' is not a port number (0 to 65535); " FORMS,
                          text, port);
    unsigned long v = strtoul(port, NULL, 10);
    if (v > 65535)
        return vram__fail(VRAM_ERANGE, "'%s': port %lu is over 65535", text, v);
    *out = (unsigned)v;
    return 0;
}

/* Splits text into host and port text; IPv6 hosts come in brackets. */
static int split(const char *text, char *host, size_t cap, const char **port)
{
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return vram__fail(VRAM_EINVAL, "'%s': an IPv6 address needs ']:PORT' after it; " FORMS,
                              text);
        if ((size_t)(close - text - 1) >= cap)
            return vram__fail(VRAM_EINVAL, "'%s': the address is too long", text);
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || colon == text)
            return vram__fail(VRAM_EINVAL, "'%s' has no %s; " FORMS, text,
                              colon ? "address" : "port");
        if ((size_t)(colon - text) >= cap || memchr(text, ':', (size_t)(colon - text)))
            return vram__fail(VRAM_EINVAL, "'%s': write an IPv6 address in brackets; " FORMS,
                              text);
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
    }
    *port = colon + 1;
    return 0;
}

int vram__hostport_parse(const char *text, vram__hostport *out)
{
    if (!text || !out)
        return vram__fail(VRAM_EINVAL, "vram__hostport_parse: NULL argument");
    memset(out, 0, sizeof(*out));
    char host[64];
    const char *port = "";
    int rc = split(text, host, sizeof(host), &port);
    if (rc || (rc = parse_port(text, port, &out->port)))
        return rc;
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    else if (!strcmp(host, "*"))
        strcpy(host, "0.0.0.0");

    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 && text[0] != '[') {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)out->port);
        out->addr_len = sizeof(*v4);
        out->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1 && text[0] == '[') {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)out->port);
        out->addr_len = sizeof(*v6);
        out->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    } else {
        return vram__fail(VRAM_EINVAL, "'%s': '%s' is not an IP address (names other than "
                          "localhost are not looked up); " FORMS, text, host);
    }
    vram__strlcpy(out->host, host, sizeof(out->host));
    return 0;
}
