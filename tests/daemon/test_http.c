/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/test_http.c - the dashboard's HTTP server against a scripted
 * provider: binding, every route's status and type, the security headers,
 * the token, bad and oversized bodies, the change stream and stopping.
 * The server answers from many threads: the ThreadSanitizer run takes it.
 */
#define TEST_THREADED 1
#include <pthread.h>
#include <stdatomic.h>

#include "core/json_read.h"
#include "daemon/http.h"
#include "daemon/httpc.h"
#include "test.h"

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"

/* ---- the scripted provider ---------------------------------------------------- */

typedef struct script {
    pthread_mutex_t lock;
    atomic_ullong version;
    int status_rc;                  /* what status_json returns */
    const char *jobs_text;          /* what jobs_json hands back */
    uint32_t last_viewer;           /* whose eyes jobs_json was last asked for */
    int submits, cancels;
    char last_command[256];
    char last_cancel[80];
} script;

static int dup_out(const char *text, char **out)
{
    *out = strdup(text);
    return *out ? 0 : VRAM_ENOMEM;
}

static int sp_status(void *user, char **json)
{
    script *s = user;
    pthread_mutex_lock(&s->lock);
    int rc = s->status_rc;
    pthread_mutex_unlock(&s->lock);
    if (rc)
        return vram__fail(rc, "the devices are being counted again");
    return dup_out("{\"snapshot\":{\"simulated\":true,\"devices\":[]},\"history\":[]}", json);
}

static int sp_jobs(void *user, uint32_t viewer, char **json)
{
    script *s = user;
    pthread_mutex_lock(&s->lock);
    s->last_viewer = viewer;
    int rc = dup_out(s->jobs_text, json);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sp_events(void *user, char **json)
{
    return dup_out("{\"events\":[{\"kind\":\"leak\",\"text\":\"pid 7 grows\"}]}", json);
}

static int sp_metrics(void *user, vram__metrics *m)
{
    m->simulated = 1;
    m->ndevices = 1;
    m->devices[0] = (vram__metrics_device){ .index = 0, .name = "T4", .uuid = "GPU-1",
                                            .total_bytes = 16106127360ull,
                                            .used_bytes = 1024, .free_bytes = 16106126336ull };
    m->jobs[VRAM__JOB_RUNNING] = 2;
    m->leases = 3;
    return 0;
}

static int sp_submit(void *user, const vram__jv *req, char **reply)
{
    script *s = user;
    const char *cmd = vram__jv_str(vram__jv_get(req, "command"));
    if (!cmd)
        return vram__fail(VRAM_EINVAL, "a job needs \"command\"");
    pthread_mutex_lock(&s->lock);
    s->submits++;
    vram__strlcpy(s->last_command, cmd, sizeof(s->last_command));
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->version, 1);
    return dup_out("{\"id\":\"j-1\"}", reply);
}

static int sp_cancel(void *user, const char *id, char **reply)
{
    script *s = user;
    if (!strcmp(id, "j-done"))
        return vram__fail(VRAM_EBUSY, "job %s has already finished", id);
    if (strcmp(id, "j-1") != 0)
        return vram__fail(VRAM_ENOENT, "no job %s", id);
    pthread_mutex_lock(&s->lock);
    s->cancels++;
    vram__strlcpy(s->last_cancel, id, sizeof(s->last_cancel));
    pthread_mutex_unlock(&s->lock);
    return dup_out("{\"id\":\"j-1\",\"state\":\"canceled\"}", reply);
}

static uint64_t sp_version(void *user)
{
    script *s = user;
    return atomic_load(&s->version);
}

static script the_script;

static vram__http_provider provider(void)
{
    script *s = &the_script;
    pthread_mutex_destroy(&s->lock);
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->jobs_text = "{\"jobs\":[{\"id\":\"j-1\",\"state\":\"queued\"}]}";
    return (vram__http_provider){ s, sp_status, sp_jobs, sp_events, sp_metrics, sp_submit,
                                  sp_cancel, sp_version };
}

/* Starts a server on a free loopback port with the token. */
static vram__http *serve(void)
{
    vram__http_provider p = provider();
    vram__http *h = NULL;
    if (vram__http_start("127.0.0.1:0", TOKEN, &p, &h) != 0)
        fprintf(stderr, "start: %s\n", vram_last_error());
    return h;
}

static bool parses(const char *text)
{
    char err[256];
    vram__json_doc *d = NULL;
    int rc = vram__json_read(text, strlen(text), 0, &d, err, sizeof(err));
    vram__json_doc_free(d);
    return rc == 0;
}

/* The "message" member of an error document, or "". */
static const char *error_message(const char *body, char *buf, size_t cap)
{
    char err[256];
    vram__json_doc *d = NULL;
    buf[0] = '\0';
    if (vram__json_read(body, strlen(body), 0, &d, err, sizeof(err)) == 0) {
        const char *m = vram__jv_str(vram__jv_get(vram__json_root(d), "message"));
        vram__strlcpy(buf, m ? m : "", cap);
    }
    vram__json_doc_free(d);
    return buf;
}

/* ---- starting ------------------------------------------------------------------- */

TEST(start_refuses_bad_addresses_and_providers)
{
    vram__http_provider p = provider();
    vram__http *h = (vram__http *)1;
    CHECK_ERR(vram__http_start("127.0.0.1", TOKEN, &p, &h), VRAM_EINVAL);
    CHECK(h == NULL);
    CHECK_CONTAINS(vram_last_error(), "'127.0.0.1' has no port");
    CHECK_ERR(vram__http_start("example.com:80", TOKEN, &p, &h), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "not looked up");
    p.cancel = NULL;
    CHECK_ERR(vram__http_start("127.0.0.1:0", TOKEN, &p, &h), VRAM_EINVAL);
    CHECK_CONTAINS(vram_last_error(), "provider");
}

TEST(default_is_loopback_7860)
{
    vram__http_provider p = provider();
    vram__http *h = NULL;
    int rc = vram__http_start(NULL, TOKEN, &p, &h);
    if (rc == VRAM_EBUSY) {
        /* Something else has 7860 here; the refusal must still name it. */
        CHECK_CONTAINS(vram_last_error(), "127.0.0.1:7860");
        return;
    }
    CHECK_OK(rc);
    CHECK_STR_EQ(vram__http_url(h), "http://127.0.0.1:7860/");
    CHECK_EQ(vram__http_port(h), 7860);
    http_reply r;
    CHECK(http_get(7860, "/api/jobs", &r) == 0);
    CHECK_EQ(r.status, 200);
    http_reply_free(&r);
    vram__http_stop(h);
}

TEST(taken_port_is_a_clear_error)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1:%u", ntohs(a.sin_port));
    vram__http_provider p = provider();
    vram__http *h = NULL;
    int rc = vram__http_start(where, TOKEN, &p, &h);
    close(fd);
    CHECK_ERR(rc, VRAM_EBUSY);
    CHECK_CONTAINS(vram_last_error(), where);
    CHECK_CONTAINS(vram_last_error(), "in use");
}

TEST(port_zero_picks_a_free_port)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    CHECK(port > 0 && port != 7860);
    char want[64];
    snprintf(want, sizeof(want), "http://127.0.0.1:%u/", port);
    CHECK_STR_EQ(vram__http_url(h), want);
    vram__http_stop(h);
    vram__http_stop(NULL);
}

/* Bound to every address, the URL said is one to open it at from here. */
TEST(every_address_url_names_loopback)
{
    static const struct { const char *bind, *url_host; } cases[] = {
        { "*:0", "127.0.0.1" },
        { "[::]:0", "[::1]" },
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(cases); i++) {
        vram__http_provider p = provider();
        vram__http *h = NULL;
        int rc = vram__http_start(cases[i].bind, TOKEN, &p, &h);
        if (rc && strchr(cases[i].bind, '[')) {
            printf("# no IPv6 here: %s\n", vram_last_error());
            continue;
        }
        CHECK_OK(rc);
        char want[96];
        snprintf(want, sizeof(want), "http://%s:%u/", cases[i].url_host, vram__http_port(h));
        CHECK_STR_EQ(vram__http_url(h), want);
        vram__http_stop(h);
    }
}

/* ---- reading ------------------------------------------------------------------- */

TEST(page_is_served_from_memory_with_safe_headers)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    static const struct { const char *path, *type; } files[] = {
        { "/", "text/html; charset=utf-8" },
        { "/index.html", "text/html; charset=utf-8" },
        { "/app.js", "text/javascript; charset=utf-8" },
        { "/style.css", "text/css; charset=utf-8" },
        { "/favicon.svg", "image/svg+xml" },
    };
    char v[512];
    for (size_t i = 0; i < VRAM__ARRAY_LEN(files); i++) {
        http_reply r;
        CHECK(http_get(port, files[i].path, &r) == 0);
        CHECK_MSG(r.status == 200, "%s: %d", files[i].path, r.status);
        CHECK_STR_EQ(http_header(&r, "Content-Type", v, sizeof(v)), files[i].type);
        CHECK_STR_EQ(http_header(&r, "Cache-Control", v, sizeof(v)), "no-store");
        CHECK_STR_EQ(http_header(&r, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
        CHECK_CONTAINS(http_header(&r, "Content-Security-Policy", v, sizeof(v)),
                       "default-src 'none'; script-src 'self'");
        const vram__asset *a = vram__web_asset_find(files[i].path);
        CHECK(a != NULL);
        CHECK_EQ(r.body_len, a->size);
        CHECK(memcmp(r.body, a->data, a->size) == 0);
        http_reply_free(&r);
    }
    http_reply r;
    CHECK(http_call(port, "HEAD", "/", NULL, NULL, &r) == 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, 0);
    http_reply_free(&r);
    vram__http_stop(h);
}

TEST(api_documents_come_from_the_provider)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    static const struct { const char *path, *has; } docs[] = {
        { "/api/status", "\"snapshot\"" },
        { "/api/jobs", "\"id\":\"j-1\"" },
        { "/api/events", "pid 7 grows" },
    };
    char v[256];
    for (size_t i = 0; i < VRAM__ARRAY_LEN(docs); i++) {
        http_reply r;
        CHECK(http_get(port, docs[i].path, &r) == 0);
        CHECK_MSG(r.status == 200, "%s: %d", docs[i].path, r.status);
        CHECK_STR_EQ(http_header(&r, "Content-Type", v, sizeof(v)), "application/json; charset=utf-8");
        CHECK_STR_EQ(http_header(&r, "Cache-Control", v, sizeof(v)), "no-store");
        CHECK(parses(r.body));
        CHECK_CONTAINS(r.body, docs[i].has);
        http_reply_free(&r);
    }
    vram__http_stop(h);
}

/* Who reads the jobs is the kernel's word: the local user at the other end
 * of the loopback connection, or the token's holder (the daemon's user);
 * never a header a client could write (issue 10: the page showed every
 * user's commands to anyone). */
TEST(jobs_are_read_for_the_connected_user)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    http_reply r;
    CHECK(http_get(port, "/api/jobs", &r) == 0);
    CHECK_EQ(r.status, 200);
    http_reply_free(&r);
    CHECK_EQ(the_script.last_viewer, (uint32_t)getuid());
    CHECK(http_call(port, "GET", "/api/jobs", AUTH, NULL, &r) == 0);
    CHECK_EQ(r.status, 200);
    http_reply_free(&r);
    CHECK_EQ(the_script.last_viewer, VRAM__HTTP_VIEWER_ALL);
    CHECK(http_call(port, "GET", "/api/jobs", "Authorization: Bearer not-the-token\r\n", NULL, &r) == 0);
    CHECK_EQ(r.status, 200);
    http_reply_free(&r);
    CHECK_EQ(the_script.last_viewer, (uint32_t)getuid());
    vram__http_stop(h);
}

TEST(provider_failures_become_json_errors)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    char m[512];
    the_script.status_rc = VRAM_EAGAIN;
    http_reply r;
    CHECK(http_get(port, "/api/status", &r) == 0);
    CHECK_EQ(r.status, 503);
    CHECK(parses(r.body));
    CHECK_CONTAINS(r.body, "\"error\":\"VRAM_EAGAIN\"");
    CHECK_STR_EQ(error_message(r.body, m, sizeof(m)), "the devices are being counted again");
    http_reply_free(&r);

    /* A provider bug never reaches a page as broken JSON. */
    the_script.jobs_text = "{\"jobs\": [";
    CHECK(http_get(port, "/api/jobs", &r) == 0);
    CHECK_EQ(r.status, 500);
    CHECK(parses(r.body));
    CHECK_CONTAINS(r.body, "invalid JSON for the jobs document");
    http_reply_free(&r);
    vram__http_stop(h);
}

TEST(unknown_paths_404_and_wrong_methods_405)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    char v[256];
    http_reply r;
    CHECK(http_get(port, "/nothing/here", &r) == 0);
    CHECK_EQ(r.status, 404);
    CHECK(parses(r.body));
    CHECK_CONTAINS(r.body, "nothing is served at /nothing/here");
    http_reply_free(&r);
    CHECK(http_get(port, "/api/nope", &r) == 0);
    CHECK_EQ(r.status, 404);
    http_reply_free(&r);

    CHECK(http_get(port, "/api/jobs/j-1/cancel", &r) == 0);
    CHECK_EQ(r.status, 405);
    CHECK_STR_EQ(http_header(&r, "Allow", v, sizeof(v)), "POST");
    http_reply_free(&r);
    CHECK(http_call(port, "DELETE", "/api/status", AUTH, NULL, &r) == 0);
    CHECK_EQ(r.status, 405);
    CHECK_STR_EQ(http_header(&r, "Allow", v, sizeof(v)), "GET, HEAD");
    http_reply_free(&r);
    CHECK(http_call(port, "POST", "/metrics", AUTH, "{}", &r) == 0);
    CHECK_EQ(r.status, 405);
    http_reply_free(&r);
    CHECK(http_call(port, "PUT", "/", NULL, NULL, &r) == 0);
    CHECK_EQ(r.status, 405);
    http_reply_free(&r);
    vram__http_stop(h);
}

TEST(host_must_be_a_loopback_name)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    static const struct { const char *host; int status; } cases[] = {
        { "127.0.0.1", 200 }, { "localhost", 200 }, { "LOCALHOST:7860", 200 },
        { "[::1]:80", 200 }, { "127.1.2.3:1", 200 },
        { "evil.example", 403 }, { "evil.example:7860", 403 }, { "10.0.0.1", 403 },
        { "[::2]", 403 }, { "[::1", 403 },
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(cases); i++) {
        char req[256];
        int n = snprintf(req, sizeof(req), "GET /api/jobs HTTP/1.1\r\nHost: %s\r\n"
                         "Connection: close\r\n\r\n", cases[i].host);
        http_reply r;
        CHECK(http_raw(port, req, (size_t)n, &r) == 0);
        CHECK_MSG(r.status == cases[i].status, "Host %s: %d, wanted %d", cases[i].host,
                  r.status, cases[i].status);
        if (r.status == 403)
            CHECK_CONTAINS(r.body, "is not this server's name");
        http_reply_free(&r);
    }
    vram__http_stop(h);
}

/* ---- changing ------------------------------------------------------------------- */

TEST(submit_needs_the_token)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    const char *body = "{\"command\": \"python infer.py\", \"vram\": \"8GiB\"}";
    char v[256];
    http_reply r;
    CHECK(http_call(port, "POST", "/api/jobs", NULL, body, &r) == 0);
    CHECK_EQ(r.status, 401);
    CHECK_STR_EQ(http_header(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer realm=\"vram\"");
    CHECK_CONTAINS(r.body, "Authorization: Bearer TOKEN");
    http_reply_free(&r);
    CHECK(http_call(port, "POST", "/api/jobs", "Authorization: Basic dXNlcjpwdw==\r\n", body,
                    &r) == 0);
    CHECK_EQ(r.status, 401);
    http_reply_free(&r);
    CHECK(http_call(port, "POST", "/api/jobs", "Authorization: Bearer 0123\r\n", body, &r) == 0);
    CHECK_EQ(r.status, 403);
    CHECK_CONTAINS(r.body, "not this daemon's");
    http_reply_free(&r);
    CHECK_EQ(the_script.submits, 0);

    CHECK(http_call(port, "POST", "/api/jobs", AUTH, body, &r) == 0);
    CHECK_EQ(r.status, 201);
    CHECK(parses(r.body));
    CHECK_STR_EQ(r.body, "{\"id\":\"j-1\"}");
    CHECK_EQ(the_script.submits, 1);
    CHECK_STR_EQ(the_script.last_command, "python infer.py");
    http_reply_free(&r);
    vram__http_stop(h);
}

TEST(no_token_means_no_changes)
{
    vram__http_provider p = provider();
    vram__http *h = NULL;
    CHECK_OK(vram__http_start("127.0.0.1:0", NULL, &p, &h));
    http_reply r;
    CHECK(http_call(vram__http_port(h), "POST", "/api/jobs", AUTH, "{\"command\":\"x\"}", &r) == 0);
    CHECK_EQ(r.status, 403);
    CHECK_CONTAINS(r.body, "started without a token");
    CHECK_EQ(the_script.submits, 0);
    http_reply_free(&r);
    vram__http_stop(h);
}

TEST(bad_bodies_are_400_naming_the_problem)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    static const struct { const char *body, *says; } cases[] = {
        { "{\"command\": ", "the request body is not JSON: at byte" },
        { "{'command': 1}", "the request body is not JSON: at byte 1" },
        { "[1, 2]", "must be a JSON object" },
        { "", "it is empty" },
        { "{\"vram\": \"8GiB\"}", "a job needs \"command\"" },
    };
    char m[512];
    for (size_t i = 0; i < VRAM__ARRAY_LEN(cases); i++) {
        http_reply r;
        CHECK(http_call(port, "POST", "/api/jobs", AUTH, cases[i].body, &r) == 0);
        CHECK_MSG(r.status == 400, "body %s: %d", cases[i].body, r.status);
        CHECK(parses(r.body));
        CHECK_CONTAINS(error_message(r.body, m, sizeof(m)), cases[i].says);
        http_reply_free(&r);
    }
    CHECK_EQ(the_script.submits, 0);
    vram__http_stop(h);
}

TEST(oversized_bodies_are_413)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    /* Declared too big: refused before a byte of it is read. */
    char req[512];
    int n = snprintf(req, sizeof(req), "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                     "Content-Length: %d\r\nConnection: close\r\n\r\n", VRAM__HTTP_MAX_BODY + 1);
    http_reply r;
    CHECK(http_raw(port, req, (size_t)n, &r) == 0);
    CHECK_EQ(r.status, 413);
    CHECK(parses(r.body));
    http_reply_free(&r);

    /* Chunked, with no length up front: refused once it passes the limit. */
    vram__buf b;
    vram__buf_init(&b);
    vram__buf_puts(&b, "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    char chunk[4096];
    memset(chunk, ' ', sizeof(chunk));
    for (int i = 0; i < VRAM__HTTP_MAX_BODY / 4096 + 2; i++) {
        vram__buf_printf(&b, "%x\r\n", (unsigned)sizeof(chunk));
        vram__buf_put(&b, chunk, sizeof(chunk));
        vram__buf_puts(&b, "\r\n");
    }
    vram__buf_puts(&b, "0\r\n\r\n");
    int rc = http_raw(port, b.data, b.len, &r);
    vram__buf_free(&b);
    CHECK(rc == 0);
    CHECK_EQ(r.status, 413);
    CHECK_CONTAINS(r.body, "over 65536 bytes");
    http_reply_free(&r);
    CHECK_EQ(the_script.submits, 0);
    vram__http_stop(h);
}

TEST(cancel_maps_the_providers_answers)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    static const struct { const char *path; int status; } cases[] = {
        { "/api/jobs/j-1/cancel", 200 },
        { "/api/jobs/j-404/cancel", 404 },
        { "/api/jobs/j-done/cancel", 409 },
        { "/api/jobs/a$b/cancel", 400 },
        { "/api/jobs/x/y/cancel", 400 },
        { "/api/jobs/0123456789012345678901234567890123456789012345678901234567890123456789/cancel",
          400 },
    };
    for (size_t i = 0; i < VRAM__ARRAY_LEN(cases); i++) {
        http_reply r;
        CHECK(http_call(port, "POST", cases[i].path, AUTH, NULL, &r) == 0);
        CHECK_MSG(r.status == cases[i].status, "%s: %d, wanted %d", cases[i].path, r.status,
                  cases[i].status);
        CHECK(parses(r.body));
        http_reply_free(&r);
    }
    CHECK_EQ(the_script.cancels, 1);
    CHECK_STR_EQ(the_script.last_cancel, "j-1");
    http_reply r;
    CHECK(http_call(port, "POST", "/api/jobs/j-1/cancel", NULL, NULL, &r) == 0);
    CHECK_EQ(r.status, 401);
    http_reply_free(&r);
    CHECK_EQ(the_script.cancels, 1);
    vram__http_stop(h);
}

/* ---- metrics ------------------------------------------------------------------- */

TEST(metrics_are_prometheus_text)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    char v[256];
    http_reply r;
    CHECK(http_get(vram__http_port(h), "/metrics", &r) == 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(http_header(&r, "Content-Type", v, sizeof(v)),
                 "text/plain; version=0.0.4; charset=utf-8");
    CHECK_CONTAINS(r.body, "vram_device_total_bytes{device=\"0\",name=\"T4\",uuid=\"GPU-1\"} "
                           "16106127360\n");
    CHECK_CONTAINS(r.body, "vram_jobs{state=\"running\"} 2\n");
    CHECK_CONTAINS(r.body, "vram_leases 3\n");
    CHECK_CONTAINS(r.body, "vram_devices_simulated 1\n");
    http_reply_free(&r);
    vram__http_stop(h);
}

/* ---- the stream ------------------------------------------------------------------- */

/* Opens /api/stream; returns the socket. */
static int open_stream(unsigned port)
{
    int fd = http_connect(port);
    const char *req = "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (fd >= 0 && http_send_all(fd, req, strlen(req)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Reads from fd into buf until it holds want or timeout_ms pass; true when
 * it does. */
static bool read_until(int fd, char *buf, size_t cap, const char *want, int timeout_ms)
{
    size_t len = strlen(buf);
    uint64_t end = vram__now_ms() + (uint64_t)timeout_ms;
    while (!strstr(buf, want) && vram__now_ms() < end && len + 1 < cap) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return strstr(buf, want) != NULL;
}

TEST(stream_says_hello_then_follows_the_version)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    atomic_store(&the_script.version, 41);
    int fd = open_stream(vram__http_port(h));
    CHECK(fd >= 0);
    char buf[8192] = "";
    CHECK(read_until(fd, buf, sizeof(buf), "event: hello\ndata: {\"version\":41}\n\n", 2000));
    CHECK_CONTAINS(buf, "Content-Type: text/event-stream");
    CHECK_CONTAINS(buf, "Cache-Control: no-store");
    uint64_t t0 = vram__now_ms();
    atomic_store(&the_script.version, 42);
    CHECK(read_until(fd, buf, sizeof(buf), "event: change\ndata: {\"version\":42}\n\n", 2000));
    printf("# the change arrived in %llu ms\n", (unsigned long long)(vram__now_ms() - t0));
    CHECK(read_until(fd, buf, sizeof(buf), "event: tick\ndata: {\"version\":42}\n\n",
                     2 * VRAM__HTTP_TICK_MS + 500));
    close(fd);
    vram__http_stop(h);
}

TEST(stop_ends_open_streams_promptly)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    int fd = open_stream(vram__http_port(h));
    char buf[4096] = "";
    CHECK(read_until(fd, buf, sizeof(buf), "event: hello", 2000));
    uint64_t t0 = vram__now_ms();
    vram__http_stop(h);
    uint64_t took = vram__now_ms() - t0;
    /* A stop that waited for the stream would wait for ever; 10 s only
     * tells that apart from a loaded machine. */
    CHECK_MSG(took < 10000, "stopping took %llu ms with a stream open", (unsigned long long)took);
    size_t len;
    char *rest = http_read_all(fd, 2000, &len);  /* ends: the server closed it */
    free(rest);
    close(fd);
}

TEST(streams_are_limited)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    unsigned port = vram__http_port(h);
    int fds[VRAM__HTTP_STREAMS_PER_CLIENT];
    for (int i = 0; i < VRAM__HTTP_STREAMS_PER_CLIENT; i++) {
        fds[i] = open_stream(port);
        char buf[1024] = "";
        CHECK(read_until(fds[i], buf, sizeof(buf), "event: hello", 2000));
    }
    http_reply r;
    CHECK(http_get(port, "/api/stream", &r) == 0);
    CHECK_EQ(r.status, 503);
    http_reply_free(&r);
    for (int i = 0; i < VRAM__HTTP_STREAMS_PER_CLIENT; i++)
        close(fds[i]);
    vram__http_stop(h);
}

/* ---- many at once ------------------------------------------------------------------- */

typedef struct hammer {
    unsigned port;
    int ok;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *k = arg;
    static const char *const paths[] = { "/api/status", "/api/jobs", "/metrics", "/app.js" };
    for (int i = 0; i < 20; i++) {
        http_reply r;
        if (http_get(k->port, paths[i % 4], &r) == 0 && r.status == 200)
            k->ok++;
        http_reply_free(&r);
        if (i % 5 == 0 && http_call(k->port, "POST", "/api/jobs", AUTH,
                                    "{\"command\":\"sleep 1\"}", &r) == 0 && r.status == 201)
            k->ok++;
        http_reply_free(&r);
    }
    return NULL;
}

TEST(concurrent_requests_all_answered)
{
    vram__http *h = serve();
    CHECK(h != NULL);
    enum { THREADS = 8 };
    pthread_t t[THREADS];
    hammer k[THREADS];
    for (int i = 0; i < THREADS; i++) {
        k[i] = (hammer){ vram__http_port(h), 0 };
        pthread_create(&t[i], NULL, hammer_run, &k[i]);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += k[i].ok;
    }
    CHECK_EQ(ok, THREADS * 24);
    CHECK_EQ(the_script.submits, THREADS * 4);
    CHECK_EQ(atomic_load(&the_script.version), THREADS * 4);
    vram__http_stop(h);
}
