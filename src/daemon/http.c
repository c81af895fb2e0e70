/* SPDX-License-Identifier: MIT */
/*
 * daemon/http.c - the dashboard's HTTP server, over libmicrohttpd.
 *
 * Owns the socket, the routes, the checks every request passes (Host on a
 * loopback listener, method, token for changes, body size and syntax), the
 * security headers, the error documents and the change stream.  What it
 * serves comes from the embedded page and from the provider (http.h); it
 * never looks inside a job.  One thread per connection, so a stream can
 * wait for changes without holding up other requests.
 *
 * libmicrohttpd is reached with dlopen when the first server starts, so that
 * only the daemon loads it and its TLS chain (gnutls and eight more
 * libraries): every other `vram` command, every runner the daemon starts
 * and every program that links libvram starts without them.
 *
 * Slow or greedy clients cannot starve the page: a connection has
 * HEADER_DEADLINE_MS to send a whole request (a watchdog shuts down the
 * ones that dawdle, however often they send a byte), one client (a remote
 * address, or on loopback the local user the kernel says owns the other
 * end) may hold at most half of the connections, and event streams are
 * counted per client, not across all of them.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/hostport.h"
#include "daemon/http.h"

#define CONNECTION_LIMIT 256
#define CLIENT_CONNECTION_LIMIT (CONNECTION_LIMIT / 2)
#define STREAMS_PER_CLIENT VRAM__HTTP_STREAMS_PER_CLIENT
#define HEADER_DEADLINE_MS 10000    /* from connecting (or the last answer) to a whole request */
#define THREAD_STACK_BYTES (512 * 1024)
#define IDLE_TIMEOUT_S 30
#define STREAM_POLL_MS 100          /* how often a stream looks at the version */
#define PROVIDER_MAX_NODES (1u << 20)

#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* One connection, from its start to its close (MHD's socket context). */
typedef struct conn_slot {
    bool used;
    int fd;
    char client[64];                /* "uid:1000" on loopback, else "ip:ADDRESS" */
    long uid;                       /* the local user at the other end; -1: not known */
    uint64_t since_ms;              /* when it connected or was last answered */
    bool in_request;                /* a whole request's headers are in */
    bool refused;                   /* its client holds too many: answered 503 */
    bool streaming;
} conn_slot;

struct vram__http {
    struct MHD_Daemon *mhd;
    conn_slot slots[CONNECTION_LIMIT + 8];  /* guarded by lock */
    pthread_t watchdog;
    bool have_watchdog;
    vram__http_provider p;
    char token[VRAM__TOKEN_LEN + 1]; /* "" refuses every change */
    vram__hostport where;
    char url[96];
    pthread_mutex_t lock;           /* guards stopping, with wake */
    pthread_cond_t wake;
    bool stopping;
    atomic_int streams;
};

/* ---- libmicrohttpd, loaded on first use ----------------------------------- */

/* The calls this file makes, each with its own declared type. */
#define MHD_CALL_LIST(X)                                            \
    X(start_daemon, MHD_start_daemon)                               \
    X(stop_daemon, MHD_stop_daemon)                                 \
    X(create_response_from_buffer, MHD_create_response_from_buffer) \
    X(create_response_from_callback, MHD_create_response_from_callback) \
    X(add_response_header, MHD_add_response_header)                 \
    X(queue_response, MHD_queue_response)                           \
    X(destroy_response, MHD_destroy_response)                       \
    X(lookup_connection_value, MHD_lookup_connection_value)         \
    X(get_connection_info, MHD_get_connection_info)                 \

/* Resolved once per process and never unloaded (RTLD_NODELETE): the library
 * is process-wide state, and gnutls keeps its own past MHD_stop_daemon.
 * The table is written once, under pthread_once, before any server uses it. */
static struct mhd_calls {
#define MHD_CALL_MEMBER(name, sym) __typeof__(sym) *name;
    MHD_CALL_LIST(MHD_CALL_MEMBER)
#undef MHD_CALL_MEMBER
} mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static char mhd_missing[160];       /* why it could not be loaded; "" when it was */

static void mhd_load(void)
{
    static const char *const names[] = { "libmicrohttpd.so.12", "libmicrohttpd.so" };
    void *lib = NULL;
    for (size_t i = 0; !lib && i < sizeof(names) / sizeof(names[0]); i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!lib) {
        snprintf(mhd_missing, sizeof(mhd_missing), "%s", dlerror());
        return;
    }
    struct mhd_calls got;
#define MHD_CALL_RESOLVE(name, sym)                                          \
    if (!(*(void **)&got.name = dlsym(lib, #sym))) {                         \
        snprintf(mhd_missing, sizeof(mhd_missing), "libmicrohttpd lacks %s", #sym); \
        return;                                                              \
    }
    MHD_CALL_LIST(MHD_CALL_RESOLVE)
#undef MHD_CALL_RESOLVE
    mhd = got;
}

static int mhd_ready(void)
{
    pthread_once(&mhd_once, mhd_load);
    if (*mhd_missing)
        return vram__fail(VRAM_ENOLIB, "the dashboard needs libmicrohttpd (Debian: libmicrohttpd12): %s",
                          mhd_missing);
    return 0;
}

/* ---- routes --------------------------------------------------------------- */

enum route { R_NONE, R_ASSET, R_STATUS, R_JOBS, R_EVENTS, R_STREAM, R_METRICS, R_CANCEL };

static const struct route_row {
    const char *path;
    enum route route;
    const char *allow;              /* the methods, as the Allow header lists them */
} routes[] = {
    { "/api/status", R_STATUS, "GET, HEAD" },
    { "/api/jobs", R_JOBS, "GET, HEAD, POST" },
    { "/api/events", R_EVENTS, "GET, HEAD" },
    { "/api/stream", R_STREAM, "GET" },
    { "/metrics", R_METRICS, "GET, HEAD" },
};

#define CANCEL_PREFIX "/api/jobs/"
#define CANCEL_SUFFIX "/cancel"

/* Per request: what was routed, and the body as it arrives. */
typedef struct request {
    enum route route;
    const char *allow;
    char job_id[72];
    vram__buf body;
    bool too_big;
} request;

static bool job_id_ok(const char *id, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789_.-";
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id[i] || !strchr(alphabet, id[i]))
            return false;
    return true;
}

/* Fills r->route and r->allow for url; R_NONE when nothing lives there. */
static void route_url(const char *url, request *r)
{
    r->route = R_NONE;
    for (size_t i = 0; i < VRAM__ARRAY_LEN(routes); i++)
        if (!strcmp(url, routes[i].path)) {
            r->route = routes[i].route;
            r->allow = routes[i].allow;
            return;
        }
    size_t n = strlen(url), pre = strlen(CANCEL_PREFIX), suf = strlen(CANCEL_SUFFIX);
    if (n > pre + suf && !strncmp(url, CANCEL_PREFIX, pre) && !strcmp(url + n - suf, CANCEL_SUFFIX)) {
        r->route = R_CANCEL;
        r->allow = "POST";
        size_t idn = n - pre - suf;
        if (job_id_ok(url + pre, idn)) {
            memcpy(r->job_id, url + pre, idn);
            r->job_id[idn] = '\0';
        }
        return;
    }
    if (vram__web_asset_find(url)) {
        r->route = R_ASSET;
        r->allow = "GET, HEAD";
    }
}

static bool method_allowed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

/* ---- responses ------------------------------------------------------------ */

static enum MHD_Result send_response(struct MHD_Connection *c, unsigned status,
                                     const char *type, void *body, size_t len,
                                     enum MHD_ResponseMemoryMode mode, const char *allow)
{
    struct MHD_Response *res = mhd.create_response_from_buffer(len, body, mode);
    if (!res) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    mhd.add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    mhd.add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    mhd.add_response_header(res, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff");
    mhd.add_response_header(res, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY, CSP);
    mhd.add_response_header(res, MHD_HTTP_HEADER_X_FRAME_OPTIONS, "DENY");
    mhd.add_response_header(res, "Referrer-Policy", "no-referrer");
    if (allow)
        mhd.add_response_header(res, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_UNAUTHORIZED)
        mhd.add_response_header(res, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"vram\"");
    enum MHD_Result ok = mhd.queue_response(c, status, res);
    mhd.destroy_response(res);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json)
{
    return send_response(c, status, "application/json; charset=utf-8", json, strlen(json),
                         MHD_RESPMEM_MUST_FREE, NULL);
}

/* {"status": 404, "error": "not_found", "message": "..."} */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *allow, const char *fmt, ...) VRAM__PRINTF(5, 6);

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *allow, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    vram__buf b;
    vram__json j;
    vram__buf_init(&b);
    vram__json_init(&j, &b);
    vram__json_object_begin(&j);
    vram__json_field_uint(&j, "status", status);
    vram__json_field_string(&j, "error", code);
    vram__json_field_string(&j, "message", message);
    vram__json_object_end(&j);
    char *json = vram__buf_take(&b, NULL);
    if (!json)
        return MHD_NO;
    return send_response(c, status, "application/json; charset=utf-8", json, strlen(json),
                         MHD_RESPMEM_MUST_FREE, allow);
}

/* The HTTP status for a provider's error code. */
static unsigned status_for(int rc)
{
    switch (rc) {
    case VRAM_EINVAL: case VRAM_EPARSE: case VRAM_ERANGE: case VRAM_EBUDGET:
        return MHD_HTTP_BAD_REQUEST;
    case VRAM_ENOENT:
        return MHD_HTTP_NOT_FOUND;
    case VRAM_EBUSY:
        return MHD_HTTP_CONFLICT;
    case VRAM_ENOFIT:
        return MHD_HTTP_UNPROCESSABLE_CONTENT;
    case VRAM_EAGAIN: case VRAM_ESHUTDOWN:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case VRAM_ENOSPC:
        return MHD_HTTP_INSUFFICIENT_STORAGE;
    default:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* Sends what a provider call gave: its JSON once it is known to parse, or
 * its error. */
static enum MHD_Result send_provided(struct MHD_Connection *c, unsigned ok_status, int rc,
                                     char *json, const char *what)
{
    if (rc) {
        free(json);
        char why[768];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return send_error(c, status_for(rc), vram_errname(rc), NULL, "%s", why);
    }
    char err[256];
    vram__json_doc *doc = NULL;
    rc = json ? vram__json_read(json, strlen(json), PROVIDER_MAX_NODES, &doc, err, sizeof(err))
              : VRAM_EINTERNAL;
    vram__json_doc_free(doc);
    if (rc) {
        free(json);
        vram__log(VRAM__LOG_ERROR, "http: the daemon's %s is not JSON: %s", what,
                  rc == VRAM_EINTERNAL ? "none given" : err);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "VRAM_EINTERNAL", NULL,
                          "the daemon produced invalid JSON for the %s", what);
    }
    return send_json(c, ok_status, json);
}

static enum MHD_Result send_metrics(vram__http *h, struct MHD_Connection *c)
{
    vram__metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "VRAM_ENOMEM", NULL,
                          "out of host memory");
    char *text = NULL;
    int rc = h->p.metrics(h->p.user, m);
    if (!rc)
        rc = vram__metrics_text(m, &text);
    free(m);
    if (rc) {
        char why[768];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return send_error(c, status_for(rc), vram_errname(rc), NULL, "%s", why);
    }
    return send_response(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                         strlen(text), MHD_RESPMEM_MUST_FREE, NULL);
}

/* ---- the change stream ----------------------------------------------------- */

/*
 * Server-sent events: "hello" at once, "change" when the provider's version
 * moves (pages then reload jobs and events) and "tick" every
 * VRAM__HTTP_TICK_MS (pages reload the status; it also keeps proxies and
 * the idle timeout from closing the stream).  Each carries
 * {"version": N}.
 */
typedef struct stream {
    vram__http *h;
    bool started;
    uint64_t version;
    uint64_t next_tick_ms;
} stream;

static ssize_t stream_event(stream *s, const char *name, char *buf, size_t max)
{
    int n = snprintf(buf, max, "%sevent: %s\ndata: {\"version\":%llu}\n\n",
                     s->started ? "" : "retry: 2000\n", name, (unsigned long long)s->version);
    s->started = true;
    return n > 0 && (size_t)n < max ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Waits up to ms for the server to stop; true when it is stopping. */
static bool wait_stopping(vram__http *h, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&h->lock);
    while (!h->stopping && pthread_cond_timedwait(&h->wake, &h->lock, &until) != ETIMEDOUT)
        ;
    bool stopping = h->stopping;
    pthread_mutex_unlock(&h->lock);
    return stopping;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    vram__http *h = s->h;
    if (!s->started) {
        s->version = h->p.version(h->p.user);
        s->next_tick_ms = vram__now_ms() + VRAM__HTTP_TICK_MS;
        return stream_event(s, "hello", buf, max);
    }
    for (;;) {
        uint64_t v = h->p.version(h->p.user);
        if (v != s->version) {
            s->version = v;
            return stream_event(s, "change", buf, max);
        }
        uint64_t now = vram__now_ms();
        if (now >= s->next_tick_ms) {
            s->next_tick_ms = now + VRAM__HTTP_TICK_MS;
            return stream_event(s, "tick", buf, max);
        }
        uint64_t left = s->next_tick_ms - now;
        if (wait_stopping(h, left < STREAM_POLL_MS ? (unsigned)left : STREAM_POLL_MS))
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
}

static void stream_free(void *cls)
{
    stream *s = cls;
    atomic_fetch_sub(&s->h->streams, 1);
    free(s);
}

static conn_slot *slot_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = mhd.get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Takes a stream for c's client: at most STREAMS_PER_CLIENT each, so a
 * client holding streams open takes none from the others. */
static bool take_stream(vram__http *h, struct MHD_Connection *c)
{
    conn_slot *me = slot_of(c);
    pthread_mutex_lock(&h->lock);
    int held = 0;
    for (size_t i = 0; me && i < sizeof(h->slots) / sizeof(h->slots[0]); i++)
        held += h->slots[i].used && h->slots[i].streaming && !strcmp(h->slots[i].client, me->client);
    bool ok = held < STREAMS_PER_CLIENT;
    if (ok && me)
        me->streaming = true;
    pthread_mutex_unlock(&h->lock);
    return ok;
}

static enum MHD_Result send_stream(vram__http *h, struct MHD_Connection *c)
{
    if (!take_stream(h, c))
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too_many_streams", NULL,
                          "you already follow this daemon from %d pages; close one", STREAMS_PER_CLIENT);
    atomic_fetch_add(&h->streams, 1);
    stream *s = calloc(1, sizeof(*s));
    struct MHD_Response *res =
        s ? mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 512, stream_read, s, stream_free)
          : NULL;
    if (!res) {
        if (s)
            free(s);
        atomic_fetch_sub(&h->streams, 1);
        return MHD_NO;
    }
    s->h = h;
    mhd.add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    mhd.add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    mhd.add_response_header(res, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff");
    mhd.add_response_header(res, "X-Accel-Buffering", "no");
    enum MHD_Result ok = mhd.queue_response(c, MHD_HTTP_OK, res);
    mhd.destroy_response(res);
    return ok;
}

/* ---- checks ------------------------------------------------------------------ */

/* Whether host (a Host header) names this machine without DNS: a loopback
 * address or localhost.  A page from elsewhere that rebinds its own name to
 * 127.0.0.1 sends that name, which is none of these. */
static bool host_is_loopback(const char *host)
{
    char name[256];
    vram__strlcpy(name, host, sizeof(name));
    char *end = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    if (name[0] == '[') {
        if (!end)
            return false;
        *end = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, name + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    if (end)
        *end = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return !strcasecmp(name, "localhost") || !strcasecmp(name, "localhost.");
}

/* On a loopback listener, a rebinding page would be able to read the API:
 * only loopback names are served. */
static bool host_allowed(const vram__http *h, const char *host)
{
    return !h->where.loopback || !host || host_is_loopback(host);
}

/* 0 when the request carries the token; else the status to refuse with. */
static unsigned check_token(const vram__http *h, struct MHD_Connection *c, const char **why)
{
    const char *auth = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h->token[0]) {
        *why = "this server takes no changes: it was started without a token";
        return MHD_HTTP_FORBIDDEN;
    }
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        *why = "changes need the daemon's token: send 'Authorization: Bearer TOKEN' "
               "(the token is in the daemon's token file)";
        return MHD_HTTP_UNAUTHORIZED;
    }
    const char *given = auth + 7;
    while (*given == ' ')
        given++;
    if (!vram__token_equal(given, h->token)) {
        *why = "the token is not this daemon's (it changes at every start: read the token file again)";
        return MHD_HTTP_FORBIDDEN;
    }
    return 0;
}

/* Whose eyes a read is for: the token's holder (the daemon's user) sees
 * every job whole; a local user, as the kernel says who owns the other end
 * of the loopback connection, sees their own whole and others' summaries;
 * anyone else, summaries only.  On a listener beyond loopback, where any
 * Host is served, a page at a name of its own rebound to 127.0.0.1 reaches
 * it from the user's browser, so the user is known only at a loopback
 * name (at the machine's own name, which Debian maps to 127.0.1.1, a local
 * user reads summaries). */
static uint32_t viewer_of(vram__http *h, struct MHD_Connection *c)
{
    const char *auth = mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h->token[0] && auth && !strncasecmp(auth, "Bearer ", 7)) {
        const char *given = auth + 7;
        while (*given == ' ')
            given++;
        if (vram__token_equal(given, h->token))
            return VRAM__HTTP_VIEWER_ALL;
    }
    conn_slot *me = slot_of(c);
    const char *host = mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    long uid = -1;
    if (me && (!host || host_is_loopback(host))) {
        pthread_mutex_lock(&h->lock);
        uid = me->uid;
        pthread_mutex_unlock(&h->lock);
    }
    return uid >= 0 && uid < (long)VRAM__HTTP_VIEWER_NONE ? (uint32_t)uid : VRAM__HTTP_VIEWER_NONE;
}

/* ---- handlers ------------------------------------------------------------------ */

static enum MHD_Result do_get(vram__http *h, struct MHD_Connection *c, const char *url,
                              const request *r)
{
    char *json = NULL;
    int rc;
    switch (r->route) {
    case R_ASSET: {
        const vram__asset *a = vram__web_asset_find(url);
        return send_response(c, MHD_HTTP_OK, a->content_type, (void *)a->data, a->size,
                             MHD_RESPMEM_PERSISTENT, NULL);
    }
    case R_STATUS:
        rc = h->p.status_json(h->p.user, &json);
        return send_provided(c, MHD_HTTP_OK, rc, json, "status document");
    case R_JOBS:
        rc = h->p.jobs_json(h->p.user, viewer_of(h, c), &json);
        return send_provided(c, MHD_HTTP_OK, rc, json, "jobs document");
    case R_EVENTS:
        rc = h->p.events_json(h->p.user, &json);
        return send_provided(c, MHD_HTTP_OK, rc, json, "events document");
    case R_STREAM:
        return send_stream(h, c);
    case R_METRICS:
        return send_metrics(h, c);
    default:
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "VRAM_EINTERNAL", NULL,
                          "no handler for GET %s", url);
    }
}

static enum MHD_Result do_submit(vram__http *h, struct MHD_Connection *c, request *r)
{
    char err[256];
    vram__json_doc *doc = NULL;
    const char *text = r->body.data ? r->body.data : "";
    int rc = vram__json_read(text, r->body.len, 0, &doc, err, sizeof(err));
    if (rc) {
        vram__json_doc_free(doc);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_json", NULL,
                          "the request body is not JSON: %s", r->body.len ? err : "it is empty");
    }
    const vram__jv *root = vram__json_root(doc);
    if (root->kind != VRAM__JV_OBJECT) {
        vram__json_doc_free(doc);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_json", NULL,
                          "the request body must be a JSON object such as "
                          "{\"command\": \"python infer.py\", \"vram\": \"8GiB\"}");
    }
    char *reply = NULL;
    rc = h->p.submit(h->p.user, root, &reply);
    vram__json_doc_free(doc);
    return send_provided(c, MHD_HTTP_CREATED, rc, reply, "submit reply");
}

static enum MHD_Result do_post(vram__http *h, struct MHD_Connection *c, request *r)
{
    if (r->too_big)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", NULL,
                          "the request body is over %d bytes", VRAM__HTTP_MAX_BODY);
    if (r->route == R_JOBS)
        return do_submit(h, c, r);
    char *reply = NULL;
    int rc = h->p.cancel(h->p.user, r->job_id, &reply);
    return send_provided(c, MHD_HTTP_OK, rc, reply, "cancel reply");
}

/* The checks made before any body is read: a refusal is sent at once. */
static enum MHD_Result first_call(vram__http *h, struct MHD_Connection *c, const char *url,
                                  const char *method, request *r, bool *answered)
{
    *answered = true;
    conn_slot *me = slot_of(c);
    if (me) {
        pthread_mutex_lock(&h->lock);
        me->in_request = true;
        bool refused = me->refused;
        pthread_mutex_unlock(&h->lock);
        if (refused)
            return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too_many_connections", NULL,
                              "you hold %d connections to this dashboard already; close some",
                              CLIENT_CONNECTION_LIMIT);
    }
    const char *host = mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!host_allowed(h, host))
        return send_error(c, MHD_HTTP_FORBIDDEN, "bad_host", NULL,
                          "Host '%s' is not this server's name; use http://127.0.0.1:%u/",
                          host, h->where.port);
    route_url(url, r);
    if (r->route == R_NONE)
        return send_error(c, MHD_HTTP_NOT_FOUND, "not_found", NULL, "nothing is served at %s",
                          url);
    if (!method_allowed(r->allow, method))
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", r->allow,
                          "%s takes %s, not %s", url, r->allow, method);
    if (strcmp(method, "POST") != 0)
        return do_get(h, c, url, r);
    const char *why;
    unsigned refuse = check_token(h, c, &why);
    if (refuse)
        return send_error(c, refuse, refuse == MHD_HTTP_UNAUTHORIZED ? "unauthorized" : "forbidden",
                          NULL, "%s", why);
    if (r->route == R_CANCEL && !r->job_id[0])
        return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_job_id", NULL,
                          "a job id is 1 to 64 of A-Z a-z 0-9 _ . -");
    const char *length = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > VRAM__HTTP_MAX_BODY)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", NULL,
                          "the request body is %s bytes; at most %d are taken", length,
                          VRAM__HTTP_MAX_BODY);
    *answered = false;
    return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    vram__http *h = cls;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        vram__buf_init(&r->body);
        *con_cls = r;
        bool answered;
        enum MHD_Result ok = first_call(h, c, url, method, r, &answered);
        if (answered)
            r->route = R_NONE;      /* nothing more to do for later calls */
        return ok;
    }
    if (r->route == R_NONE) {
        *upload_size = 0;           /* answered already: the rest is dropped */
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->body.len + *upload_size > VRAM__HTTP_MAX_BODY)
            r->too_big = true;
        else
            vram__buf_put(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->body.failed)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "VRAM_ENOMEM", NULL,
                          "out of host memory for the request");
    enum MHD_Result ok = do_post(h, c, r);
    r->route = R_NONE;
    return ok;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    vram__http *h = cls;
    conn_slot *me = slot_of(c);
    if (me) {                       /* the next request on it has its own deadline */
        pthread_mutex_lock(&h->lock);
        me->in_request = false;
        me->streaming = false;
        me->since_ms = vram__now_ms();
        pthread_mutex_unlock(&h->lock);
    }
    request *r = *con_cls;
    if (r) {
        vram__buf_free(&r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    vram__log(VRAM__LOG_INFO, "http: %s", vram__trim(line));
}

/* ---- who is connected ------------------------------------------------------------ */

/* addr:port as /proc/net/tcp{,6} writes it: each 32-bit word of the
 * address as the host reads it, in hex, then the port. */
static void proc_net_addr(const struct sockaddr *sa, char *buf, size_t cap)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        snprintf(buf, cap, "%08X:%04X", (unsigned)in->sin_addr.s_addr, ntohs(in->sin_port));
        return;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uint32_t w[4];
    memcpy(w, &in6->sin6_addr, sizeof(w));
    snprintf(buf, cap, "%08X%08X%08X%08X:%04X", (unsigned)w[0], (unsigned)w[1], (unsigned)w[2],
             (unsigned)w[3], ntohs(in6->sin6_port));
}

/* The uid that owns the client's end of a loopback TCP connection, from
 * /proc/net/tcp{,6} (the kernel's word, like SO_PEERCRED on a Unix socket);
 * -1 when it cannot be found.  The row must name both ends, client then
 * server, and belong to a socket (an inode): a TIME_WAIT row, which the
 * kernel lists as uid 0 with no inode, may share the client's address and
 * port (any user can make one for a port it then connects from), and
 * taking its uid would show that user every job whole. */
static long loopback_uid(const struct sockaddr *client, const struct sockaddr *server)
{
    char want_local[64], want_remote[64];
    proc_net_addr(client, want_local, sizeof(want_local));
    proc_net_addr(server, want_remote, sizeof(want_remote));
    FILE *f = fopen(client->sa_family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "r");
    if (!f)
        return -1;
    char line[512], local[64], remote[64];
    long uid = -1, u;
    unsigned long inode;
    while (uid < 0 && fgets(line, sizeof(line), f))
        if (sscanf(line, " %*s %63s %63s %*s %*s %*s %*s %ld %*s %lu", local, remote, &u, &inode) == 4 &&
            inode != 0 && !strcmp(local, want_local) && !strcmp(remote, want_remote))
            uid = u;
    fclose(f);
    return uid;
}

/* Names the client in buf ("uid:N" or "ip:ADDRESS") and returns its local
 * user, or -1; fd is the connection's socket (its own address is the
 * server's end). */
static long client_of(struct MHD_Connection *c, int fd, char *buf, size_t cap)
{
    const union MHD_ConnectionInfo *ci = mhd.get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    snprintf(buf, cap, "?");
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return -1;
    bool loopback;
    char ip[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    }
    struct sockaddr_storage server;
    socklen_t len = sizeof(server);
    long uid = -1;
    if (loopback && fd >= 0 && getsockname(fd, (struct sockaddr *)&server, &len) == 0 &&
        server.ss_family == sa->sa_family)
        uid = loopback_uid(sa, (const struct sockaddr *)&server);
    if (uid >= 0)
        snprintf(buf, cap, "uid:%ld", uid);
    else
        snprintf(buf, cap, "ip:%s", ip);
    return uid;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    vram__http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_slot *s = *socket_context;
        pthread_mutex_lock(&h->lock);
        if (s)
            s->used = false;        /* before MHD closes the fd: the watchdog never sees it reused */
        pthread_mutex_unlock(&h->lock);
        *socket_context = NULL;
        return;
    }
    /* Read before client_of: MHD answers each question in one union per
     * connection, which the next question overwrites. */
    const union MHD_ConnectionInfo *ci = mhd.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    char client[64];
    long uid = client_of(c, fd, client, sizeof(client));
    pthread_mutex_lock(&h->lock);
    conn_slot *free_slot = NULL;
    int same = 0;
    for (size_t i = 0; i < sizeof(h->slots) / sizeof(h->slots[0]); i++) {
        conn_slot *s = &h->slots[i];
        if (!s->used && !free_slot)
            free_slot = s;
        same += s->used && !strcmp(s->client, client);
    }
    if (free_slot) {
        *free_slot = (conn_slot){ .used = true, .fd = fd, .since_ms = vram__now_ms(),
                                  .refused = same >= CLIENT_CONNECTION_LIMIT, .uid = uid };
        vram__strlcpy(free_slot->client, client, sizeof(free_slot->client));
    }
    pthread_mutex_unlock(&h->lock);
    *socket_context = free_slot;
}

/* Shuts down connections that have not sent a whole request in time (a
 * slow client sending a byte now and then never trips the idle timeout). */
static void *watchdog(void *arg)
{
    vram__http *h = arg;
    while (!wait_stopping(h, 250)) {
        uint64_t now = vram__now_ms();
        pthread_mutex_lock(&h->lock);
        for (size_t i = 0; i < sizeof(h->slots) / sizeof(h->slots[0]); i++) {
            conn_slot *s = &h->slots[i];
            uint64_t limit = s->refused ? HEADER_DEADLINE_MS / 5 : HEADER_DEADLINE_MS;
            if (s->used && !s->in_request && s->fd >= 0 && now - s->since_ms > limit) {
                shutdown(s->fd, SHUT_RDWR);
                s->fd = -1;         /* once */
            }
        }
        pthread_mutex_unlock(&h->lock);
    }
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------- */

static int listen_on(const vram__hostport *where, int *fd_out, unsigned *port_out)
{
    int fd = socket(where->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vram__fail(VRAM_EIO, "cannot make a socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (where->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    int rc = 0;
    if (bind(fd, (const struct sockaddr *)&where->addr, where->addr_len) != 0) {
        int e = errno;
        rc = e == EADDRINUSE
                 ? vram__fail(VRAM_EBUSY, "cannot listen on %s:%u: the port is in use by another "
                              "program (a daemon already running?); choose another with --http",
                              where->host, where->port)
             : e == EACCES
                 ? vram__fail(VRAM_EPERM, "cannot listen on %s:%u: ports under 1024 need "
                              "privileges; choose another with --http", where->host, where->port)
                 : vram__fail(VRAM_EIO, "cannot listen on %s:%u: %s", where->host, where->port,
                              strerror(e));
    } else if (listen(fd, 64) != 0) {
        rc = vram__fail(VRAM_EIO, "cannot listen on %s:%u: %s", where->host, where->port,
                        strerror(errno));
    }
    struct sockaddr_storage got;
    socklen_t len = sizeof(got);
    if (!rc && getsockname(fd, (struct sockaddr *)&got, &len) != 0)
        rc = vram__fail(VRAM_EIO, "cannot read the port bound: %s", strerror(errno));
    if (rc) {
        close(fd);
        return rc;
    }
    *port_out = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                : ((struct sockaddr_in *)&got)->sin_port);
    *fd_out = fd;
    return 0;
}

static bool provider_complete(const vram__http_provider *p)
{
    return p && p->status_json && p->jobs_json && p->events_json && p->metrics && p->submit &&
           p->cancel && p->version;
}

static int start_mhd(vram__http *h, int fd)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG |
                     (h->where.addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->mhd = mhd.start_daemon(flags, 0, NULL, NULL, handle, h,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_LISTEN_SOCKET, fd,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
                              MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK_BYTES,
                              MHD_OPTION_NOTIFY_COMPLETED, request_done, h,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                              MHD_OPTION_END);
    if (!h->mhd) {
        close(fd);
        return vram__fail(VRAM_EIO, "cannot start the HTTP server on %s", h->url);
    }
    return 0;
}

int vram__http_start(const char *addr_port, const char *token, const vram__http_provider *p,
                     vram__http **out)
{
    if (!out)
        return vram__fail(VRAM_EINVAL, "vram__http_start: NULL output");
    *out = NULL;
    if (!provider_complete(p))
        return vram__fail(VRAM_EINVAL, "vram__http_start: the provider lacks a function");
    if (token && strlen(token) > VRAM__TOKEN_LEN)
        return vram__fail(VRAM_EINVAL, "vram__http_start: the token is over %d characters",
                          VRAM__TOKEN_LEN);
    int rc = mhd_ready();
    if (rc)
        return rc;
    vram__http *h = calloc(1, sizeof(*h));
    if (!h)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    h->p = *p;
    vram__strlcpy(h->token, token ? token : "", sizeof(h->token));
    atomic_init(&h->streams, 0);
    int fd = -1;
    rc = vram__hostport_parse(addr_port ? addr_port : VRAM__HTTP_DEFAULT_ADDR, &h->where);
    if (!rc)
        rc = listen_on(&h->where, &fd, &h->where.port);
    if (rc) {
        free(h);
        return rc;
    }
    bool v6 = h->where.addr.ss_family == AF_INET6;
    bool every = !strcmp(h->where.host, "0.0.0.0") || !strcmp(h->where.host, "::");
    snprintf(h->url, sizeof(h->url), "http://%s%s%s:%u/", v6 ? "[" : "",
             every ? (v6 ? "::1" : "127.0.0.1") : h->where.host, v6 ? "]" : "", h->where.port);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&h->lock, NULL);
    rc = start_mhd(h, fd);
    if (!rc && pthread_create(&h->watchdog, NULL, watchdog, h) != 0) {
        mhd.stop_daemon(h->mhd);
        rc = vram__fail(VRAM_EIO, "cannot start the HTTP watchdog thread");
    }
    h->have_watchdog = !rc;
    if (rc) {
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    /* The address it is bound to, not the URL (which names 127.0.0.1 for
     * 0.0.0.0 and ::1 for ::, an address to open it at from here). */
    if (!h->where.loopback)
        vram__log(VRAM__LOG_WARN, "the dashboard listens on %s%s%s port %u%s: anyone who can reach it can "
                  "read the devices and jobs; changes need the token, which a page on another machine sends "
                  "unencrypted with every request (reach it through an SSH tunnel instead)", v6 ? "[" : "",
                  h->where.host, v6 ? "]" : "", h->where.port, every ? " (every address)" : "");
    *out = h;
    return 0;
}

void vram__http_stop(vram__http *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->lock);
    if (h->have_watchdog)
        pthread_join(h->watchdog, NULL);
    mhd.stop_daemon(h->mhd);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

const char *vram__http_url(const vram__http *h)
{
    return h ? h->url : "";
}

unsigned vram__http_port(const vram__http *h)
{
    return h ? h->where.port : 0;
}
