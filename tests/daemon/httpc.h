/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/httpc.h - a small HTTP/1.1 client for the server's tests.
 *
 * Raw sockets, so that a test controls every byte it sends (bad headers,
 * oversized bodies, chunked uploads) and sees every byte that comes back.
 * Each call opens one connection with "Connection: close" and reads to the
 * end.  Functions return 0 or -1 and never check anything themselves.
 */
#ifndef VRAM_TESTS_HTTPC_H
#define VRAM_TESTS_HTTPC_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct http_reply {
    int status;
    char head[8192];                /* status line and headers, as received */
    char *body;                     /* NUL-terminated; chunked bodies decoded */
    size_t body_len;
} http_reply;

static int http_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static int http_send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until EOF (or timeout_ms of silence) into a malloc'd buffer. */
static char *http_read_all(int fd, int timeout_ms, size_t *len_out)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (buf && poll(&p, 1, timeout_ms) > 0) {
        if (len == cap) {
            char *more = realloc(buf, 2 * cap + 1);
            if (!more)
                break;
            buf = more;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (buf)
        buf[len] = '\0';
    *len_out = len;
    return buf;
}

/* Decodes a chunked body in place; returns its length. */
static size_t http_unchunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        unsigned long n = strtoul(body + in, NULL, 16);
        char *eol = strstr(body + in, "\r\n");
        if (!eol || n == 0)
            break;
        in = (size_t)(eol - body) + 2;
        if (in + n > len)
            n = len - in;
        memmove(body + out, body + in, n);
        out += n;
        in += n + 2;
    }
    body[out] = '\0';
    return out;
}

static int http_parse(char *raw, size_t len, http_reply *r)
{
    char *end = strstr(raw, "\r\n\r\n");
    if (!end || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    size_t head = (size_t)(end - raw);
    snprintf(r->head, sizeof(r->head), "%.*s", (int)head, raw);
    r->body_len = len - head - 4;
    r->body = malloc(r->body_len + 1);
    if (!r->body)
        return -1;
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    if (strcasestr(r->head, "\r\nTransfer-Encoding: chunked"))
        r->body_len = http_unchunk(r->body, r->body_len);
    return 0;
}

/* Sends raw bytes as they are and reads the whole reply. */
static int http_raw(unsigned port, const char *request, size_t len, http_reply *r)
{
    memset(r, 0, sizeof(*r));
    int fd = http_connect(port);
    if (fd < 0)
        return -1;
    http_send_all(fd, request, len);   /* the server may answer before the body */
    size_t got;
    char *raw = http_read_all(fd, 5000, &got);
    close(fd);
    int rc = raw ? http_parse(raw, got, r) : -1;
    free(raw);
    return rc;
}

/* METHOD path with Host 127.0.0.1:port, the extra header lines given
 * ("Name: value\r\n" each, or NULL) and body (or NULL). */
static int http_call(unsigned port, const char *method, const char *path, const char *extra,
                     const char *body, http_reply *r)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = 1024 + strlen(path) + (extra ? strlen(extra) : 0) + blen;
    char *req = malloc(cap);
    if (!req)
        return -1;
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n%s",
                     method, path, port, extra ? extra : "");
    if (body)
        n += snprintf(req + n, cap - (size_t)n, "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n", blen);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body) {
        memcpy(req + n, body, blen);
        n += (int)blen;
    }
    int rc = http_raw(port, req, (size_t)n, r);
    free(req);
    return rc;
}

static int http_get(unsigned port, const char *path, http_reply *r)
{
    return http_call(port, "GET", path, NULL, NULL, r);
}

/* The value of header name in r (case-insensitive), or "" when absent. */
static const char *http_header(const http_reply *r, const char *name, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, n) || line[2 + n] != ':')
            continue;
        const char *v = line + 3 + n;
        while (*v == ' ')
            v++;
        const char *end = strstr(v, "\r\n");
        size_t len = end ? (size_t)(end - v) : strlen(v);
        snprintf(buf, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
        break;
    }
    return buf;
}

static void http_reply_free(http_reply *r)
{
    free(r->body);
    r->body = NULL;
}

#endif /* VRAM_TESTS_HTTPC_H */
