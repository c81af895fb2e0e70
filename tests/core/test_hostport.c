/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_hostport.c - "ADDR:PORT" for listening sockets, and the
 * http option that uses it.
 */
#include <netinet/in.h>

#include "core/hostport.h"
#include "test.h"

TEST(accepted_forms)
{
    static const struct { const char *text, *host; unsigned port; bool loopback; int family; } ok[] = {
        { "127.0.0.1:7860", "127.0.0.1", 7860, true, AF_INET },
        { "localhost:80", "127.0.0.1", 80, true, AF_INET },
        { "127.5.0.1:0", "127.5.0.1", 0, true, AF_INET },
        { "*:7860", "0.0.0.0", 7860, false, AF_INET },
        { "0.0.0.0:65535", "0.0.0.0", 65535, false, AF_INET },
        { "192.168.1.2:8080", "192.168.1.2", 8080, false, AF_INET },
        { "[::1]:7860", "::1", 7860, true, AF_INET6 },
        { "[::]:1", "::", 1, false, AF_INET6 },
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(ok); i++) {
        vram__hostport hp;
        CHECK_OK(vram__hostport_parse(ok[i].text, &hp));
        CHECK_STR_EQ(hp.host, ok[i].host);
        CHECK_EQ(hp.port, ok[i].port);
        CHECK_MSG(hp.loopback == ok[i].loopback, "%s: loopback %d", ok[i].text, hp.loopback);
        CHECK_EQ(hp.addr.ss_family, ok[i].family);
        CHECK_EQ(hp.addr_len, ok[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                      : sizeof(struct sockaddr_in6));
    }
}

TEST(refused_forms_say_why)
{
    static const struct { const char *text, *says; } bad[] = {
        { "", "has no port" },
        { "127.0.0.1", "has no port" },
        { ":7860", "has no address" },
        { "127.0.0.1:", "is not a port number" },
        { "127.0.0.1:http", "'http' is not a port number" },
        { "127.0.0.1:65536", "port 65536 is over 65535" },
        { "127.0.0.1:-1", "is not a port number" },
        { "example.com:80", "names other than localhost are not looked up" },
        { "::1:7860", "write an IPv6 address in brackets" },
        { "[::1]7860", "needs ']:PORT'" },
        { "[127.0.0.1]:80", "is not an IP address" },
        { "[::1:80", "needs ']:PORT'" },
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(bad); i++) {
        vram__hostport hp;
        int rc = vram__hostport_parse(bad[i].text, &hp);
        CHECK_MSG(rc == VRAM_EINVAL || rc == VRAM_ERANGE, "'%s' was accepted", bad[i].text);
        CHECK_CONTAINS(vram_last_error(), bad[i].says);
    }
}

TEST(http_option_is_checked)
{
    vram_options *o;
    CHECK_OK(vram_options_new(&o));
    CHECK_STR_EQ(vram_options_get(o, "http"), "127.0.0.1:7860");
    CHECK_STR_EQ(vram_options_get(o, "token-file"), "");
    CHECK_OK(vram_options_set(o, "http", "[::1]:9000", NULL));
    CHECK_ERR(vram_options_set(o, "http", "7860", "VRAM_HTTP"), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "VRAM_HTTP: '7860' has no port");
    CHECK_STR_EQ(vram_options_get(o, "http"), "[::1]:9000");
    vram_options_free(o);
}
