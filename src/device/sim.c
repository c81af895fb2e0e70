/* SPDX-License-Identifier: MIT */
/*
 * device/sim.c - the simulated backend: cards described by a spec, with
 * scripted processes, injected faults and, through a shared directory, real
 * allocations made by other processes.
 *
 * It is how every module is tested without a GPU and what vram falls back
 * to (saying so) when no NVIDIA driver is found.  Everything here is
 * deterministic: a scripted process's usage is a step function of the
 * device's query count (or of milliseconds since open, when the file says
 * `clock ms`).
 *
 * Spec, short form:  NAME:TOTAL[:USED],...     "T4:14.7GiB:8.5GiB,RTX 4090:24GiB"
 * Spec, file form:   @PATH, one statement a line, '#' starts a comment:
 *     clock queries|ms
 *     device NAME total=SIZE [used=SIZE] [reserved=SIZE] [uuid=TEXT]
 *     process pid=N [device=I] [name=TEXT] used=SIZE
 *     process pid=N [device=I] [name=TEXT] usage=T:SIZE,T:SIZE,...
 *     fault call=count|query|processes nth=N [times=K] [error=NAME]
 * A value with spaces is written in double quotes.  With a state directory
 * (option sim-state), each process's vram_sim_set_usage() is a file
 * "<device>-<pid>" there holding its bytes; dead processes do not count.
 * reserved= is what a driver sets aside (NVML v2's "reserved"): outside
 * used and free, so used + free + reserved = total, as on such a card.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device/backend.h"

#define SIM_MAX_DEVICES 64
#define SIM_MAX_POINTS 64
#define SIM_MAX_PROCS 1024
#define SIM_DEFAULT_NAME "Simulated GPU"
#define SIM_DEFAULT_TOTAL (24ull * VRAM__GiB)

typedef struct sim_point {
    uint64_t t;                     /* query number, or ms since open */
    uint64_t bytes;
} sim_point;

typedef struct sim_script_proc {
    uint32_t pid;
    unsigned device;
    char name[64];
    size_t npoints;
    sim_point points[SIM_MAX_POINTS];
} sim_script_proc;

typedef struct sim_device {
    char name[VRAM_NAME_MAX];
    char uuid[VRAM_NAME_MAX];
    uint64_t total;
    uint64_t base_used;             /* used by things that are not processes */
    uint64_t reserved;              /* set aside by the driver: neither used nor free */
    uint64_t queries;               /* queries answered: the device's clock */
} sim_device;

typedef struct sim_backend {
    vram_backend base;
    unsigned ndev;
    sim_device dev[SIM_MAX_DEVICES];
    size_t nproc;
    sim_script_proc *procs;
    int clock_ms;
    uint64_t t0_ms;
    char state_dir[4096];
    char source[32];                /* "--sim" or "VRAM_SIM", for messages */
} sim_backend;

static sim_backend *to_sim(vram_backend *be)
{
    return (sim_backend *)be;
}

/* ---- parsing ------------------------------------------------------------- */

/* Parses a size for the spec; on failure the message says where. */
static int spec_size(const sim_backend *s, const char *where, const char *text, uint64_t *out)
{
    int rc = vram_size_parse(text, out);
    if (rc) {
        char why[512];
        vram__strlcpy(why, vram_last_error(), sizeof(why));
        return vram__fail(rc, "%s: %s: %s", s->source, where, why);
    }
    return 0;
}

static int add_device(sim_backend *s, const char *where, const char *name, uint64_t total,
                      uint64_t used)
{
    if (s->ndev >= SIM_MAX_DEVICES)
        return vram__fail(VRAM_ERANGE, "%s: %s: at most %d simulated devices", s->source, where,
                          SIM_MAX_DEVICES);
    if (!*name)
        return vram__fail(VRAM_EINVAL, "%s: %s: the device has no name (use NAME:TOTAL[:USED])",
                          s->source, where);
    if (total == 0)
        return vram__fail(VRAM_EINVAL, "%s: %s: total must be more than 0", s->source, where);
    if (used > total)
        return vram__fail(VRAM_EINVAL, "%s: %s: used is more than total", s->source, where);
    sim_device *d = &s->dev[s->ndev];
    vram__strlcpy(d->name, name, sizeof(d->name));
    snprintf(d->uuid, sizeof(d->uuid), "SIM-%08x-%04u", (unsigned)(total >> 20), s->ndev);
    d->total = total;
    d->base_used = used;
    s->ndev++;
    return 0;
}

/* One entry of the short form: NAME:TOTAL[:USED]. */
static int parse_short_entry(sim_backend *s, char *entry, unsigned number)
{
    char where[160];
    snprintf(where, sizeof(where), "device %u '%.100s'", number, entry);
    char *fields[4];
    int n = 0;
    for (char *p = entry, *colon; n < 4; p = colon + 1) {
        fields[n++] = p;
        colon = strchr(p, ':');
        if (!colon)
            break;
        *colon = '\0';
    }
    if (n < 2 || n > 3)
        return vram__fail(VRAM_EINVAL,
                          "%s: %s: expected NAME:TOTAL[:USED], e.g. \"T4:14.7GiB:8.5GiB\"",
                          s->source, where);
    uint64_t total, used = 0;
    int rc = spec_size(s, where, vram__trim(fields[1]), &total);
    if (!rc && n == 3)
        rc = spec_size(s, where, vram__trim(fields[2]), &used);
    return rc ? rc : add_device(s, where, vram__trim(fields[0]), total, used);
}

static int parse_short(sim_backend *s, const char *spec)
{
    char *copy = strdup(spec);
    if (!copy)
        return vram__fail(VRAM_ENOMEM, "out of host memory reading %s", s->source);
    int rc = 0;
    unsigned number = 0;
    for (char *save = NULL, *entry = strtok_r(copy, ",", &save); entry && !rc;
         entry = strtok_r(NULL, ",", &save))
        rc = parse_short_entry(s, entry, number++);
    if (!rc && s->ndev == 0)
        rc = vram__fail(VRAM_EINVAL, "%s: '%s' names no device; use NAME:TOTAL[:USED],...",
                        s->source, spec);
    free(copy);
    return rc;
}

/* Splits a line into words; a double-quoted stretch is one word (quotes
 * removed), also after '=' ("name=\"RTX 4090\"").  Returns the count or -1
 * for an unterminated quote. */
static int split_words(char *line, char **words, int cap)
{
    int n = 0;
    char *p = line;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            break;
        if (n == cap)
            return -2;
        char *out = p;
        words[n++] = out;
        while (*p && !isspace((unsigned char)*p)) {
            if (*p == '"') {
                p++;
                while (*p && *p != '"')
                    *out++ = *p++;
                if (*p != '"')
                    return -1;
                p++;
            } else {
                *out++ = *p++;
            }
        }
        char next = *p;
        *out = '\0';
        if (next)
            p++;
    }
    return n;
}

/* The value of key=value among words[from..n), or NULL. */
static const char *word_value(char **words, int n, int from, const char *key)
{
    size_t k = strlen(key);
    for (int i = from; i < n; i++)
        if (!strncmp(words[i], key, k) && words[i][k] == '=')
            return words[i] + k + 1;
    return NULL;
}

/* Refuses keys other than those listed (comma-separated). */
static int check_keys(const sim_backend *s, const char *where, char **words, int n, int from,
                      const char *allowed)
{
    for (int i = from; i < n; i++) {
        char *eq = strchr(words[i], '=');
        if (!eq)
            return vram__fail(VRAM_EINVAL, "%s: %s: '%s' is not key=value", s->source, where,
                              words[i]);
        size_t k = (size_t)(eq - words[i]);
        bool ok = false;
        for (const char *a = allowed; *a;) {
            const char *comma = strchr(a, ',');
            size_t len = comma ? (size_t)(comma - a) : strlen(a);
            if (len == k && !strncmp(a, words[i], k))
                ok = true;
            a = comma ? comma + 1 : a + len;
        }
        if (!ok)
            return vram__fail(VRAM_EINVAL, "%s: %s: unknown key '%.*s' (accepted: %s)", s->source,
                              where, (int)k, words[i], allowed);
    }
    return 0;
}

static int parse_uint(const sim_backend *s, const char *where, const char *key, const char *text,
                      uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = text && isdigit((unsigned char)*text) ? strtoull(text, &end, 10) : 0;
    if (!text || !isdigit((unsigned char)*text) || *end || errno || v > max)
        return vram__fail(VRAM_EINVAL, "%s: %s: %s='%s' is not a whole number from 0 to %llu",
                          s->source, where, key, text ? text : "", (unsigned long long)max);
    *out = v;
    return 0;
}

static int parse_device_line(sim_backend *s, const char *where, char **w, int n)
{
    if (n < 2 || strchr(w[1], '='))
        return vram__fail(VRAM_EINVAL, "%s: %s: expected: device NAME total=SIZE [used=SIZE] [reserved=SIZE]",
                          s->source, where);
    int rc = check_keys(s, where, w, n, 2, "total,used,reserved,uuid");
    if (rc)
        return rc;
    const char *total_text = word_value(w, n, 2, "total");
    const char *used_text = word_value(w, n, 2, "used");
    if (!total_text)
        return vram__fail(VRAM_EINVAL, "%s: %s: device '%s' needs total=SIZE", s->source, where,
                          w[1]);
    uint64_t total, used = 0;
    if ((rc = spec_size(s, where, total_text, &total)) ||
        (used_text && (rc = spec_size(s, where, used_text, &used))) ||
        (rc = add_device(s, where, w[1], total, used)))
        return rc;
    const char *reserved_text = word_value(w, n, 2, "reserved");
    uint64_t reserved = 0;
    if (reserved_text && (rc = spec_size(s, where, reserved_text, &reserved)))
        return rc;
    if (reserved > total - used)
        return vram__fail(VRAM_EINVAL, "%s: %s: device '%s': used and reserved are more than total", s->source,
                          where, w[1]);
    s->dev[s->ndev - 1].reserved = reserved;
    const char *uuid = word_value(w, n, 2, "uuid");
    if (uuid)
        vram__strlcpy(s->dev[s->ndev - 1].uuid, uuid, VRAM_NAME_MAX);
    return 0;
}

/* "T:SIZE,T:SIZE,..." with T increasing. */
static int parse_timeline(sim_backend *s, const char *where, const char *text, sim_script_proc *p)
{
    char *copy = strdup(text);
    if (!copy)
        return vram__fail(VRAM_ENOMEM, "out of host memory");
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item && !rc;
         item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        if (!colon) {
            rc = vram__fail(VRAM_EINVAL, "%s: %s: usage item '%s' is not T:SIZE", s->source,
                            where, item);
            break;
        }
        *colon = '\0';
        if (p->npoints == SIM_MAX_POINTS) {
            rc = vram__fail(VRAM_ERANGE, "%s: %s: at most %d usage points", s->source, where,
                            SIM_MAX_POINTS);
            break;
        }
        sim_point *pt = &p->points[p->npoints];
        if ((rc = parse_uint(s, where, "usage time", item, UINT64_MAX / 2, &pt->t)) ||
            (rc = spec_size(s, where, colon + 1, &pt->bytes)))
            break;
        if (p->npoints && pt->t <= p->points[p->npoints - 1].t)
            rc = vram__fail(VRAM_EINVAL, "%s: %s: usage times must increase", s->source, where);
        p->npoints++;
    }
    free(copy);
    return rc;
}

static int parse_process_line(sim_backend *s, const char *where, char **w, int n)
{
    int rc = check_keys(s, where, w, n, 1, "pid,device,name,used,usage");
    if (rc)
        return rc;
    if (s->nproc == SIM_MAX_PROCS)
        return vram__fail(VRAM_ERANGE, "%s: %s: at most %d processes", s->source, where,
                          SIM_MAX_PROCS);
    sim_script_proc *p = &s->procs[s->nproc];
    memset(p, 0, sizeof(*p));
    uint64_t pid, device = 0;
    const char *dev_text = word_value(w, n, 1, "device");
    if ((rc = parse_uint(s, where, "pid", word_value(w, n, 1, "pid"), UINT32_MAX, &pid)) ||
        (dev_text && (rc = parse_uint(s, where, "device", dev_text, SIM_MAX_DEVICES - 1, &device))))
        return rc;
    p->pid = (uint32_t)pid;
    p->device = (unsigned)device;
    const char *name = word_value(w, n, 1, "name");
    vram__strlcpy(p->name, name ? name : "", sizeof(p->name));
    const char *used = word_value(w, n, 1, "used");
    const char *usage = word_value(w, n, 1, "usage");
    if (!!used == !!usage)
        return vram__fail(VRAM_EINVAL, "%s: %s: a process needs used=SIZE or usage=T:SIZE,...",
                          s->source, where);
    if (used) {
        p->npoints = 1;
        rc = spec_size(s, where, used, &p->points[0].bytes);
    } else {
        rc = parse_timeline(s, where, usage, p);
    }
    if (!rc)
        s->nproc++;
    return rc;
}

static int error_by_name(const char *name)
{
#define BY_NAME(id, value, text) \
    if (!strcasecmp(name, #id))  \
        return value;
    VRAM_ERROR_LIST(BY_NAME)
#undef BY_NAME
    return 0;
}

static int parse_fault_line(sim_backend *s, const char *where, char **w, int n)
{
    int rc = check_keys(s, where, w, n, 1, "call,nth,times,error");
    if (rc)
        return rc;
    const char *call = word_value(w, n, 1, "call");
    int kind = !call ? -1
             : !strcmp(call, "count") ? VRAM__CALL_COUNT
             : !strcmp(call, "query") ? VRAM__CALL_QUERY
             : !strcmp(call, "processes") ? VRAM__CALL_PROCESSES : -1;
    if (kind < 0)
        return vram__fail(VRAM_EINVAL, "%s: %s: call='%s' is not count, query or processes",
                          s->source, where, call ? call : "");
    uint64_t nth, times = 1;
    const char *times_text = word_value(w, n, 1, "times");
    if ((rc = parse_uint(s, where, "nth", word_value(w, n, 1, "nth"), UINT64_MAX / 2, &nth)) ||
        (times_text && (rc = parse_uint(s, where, "times", times_text, UINT64_MAX / 2, &times))))
        return rc;
    const char *err_text = word_value(w, n, 1, "error");
    int err = err_text ? error_by_name(err_text) : VRAM_EDRIVER;
    if (!err)
        return vram__fail(VRAM_EINVAL, "%s: %s: error='%s' is not a vram error name (e.g. driver, "
                          "nodev, internal)", s->source, where, err_text);
    if (nth == 0 || times == 0)
        return vram__fail(VRAM_EINVAL, "%s: %s: nth and times start at 1", s->source, where);
    return vram__backend_inject_fault(&s->base, kind, nth, times, err);
}

static int parse_line(sim_backend *s, const char *where, char *line)
{
    char *w[32];
    int n = split_words(line, w, 32);
    if (n == -1)
        return vram__fail(VRAM_EINVAL, "%s: %s: unterminated quote", s->source, where);
    if (n < 0)
        return vram__fail(VRAM_EINVAL, "%s: %s: too many words", s->source, where);
    if (n == 0)
        return 0;
    if (!strcmp(w[0], "device"))
        return parse_device_line(s, where, w, n);
    if (!strcmp(w[0], "process"))
        return parse_process_line(s, where, w, n);
    if (!strcmp(w[0], "fault"))
        return parse_fault_line(s, where, w, n);
    if (!strcmp(w[0], "clock") && n == 2 && (!strcmp(w[1], "ms") || !strcmp(w[1], "queries"))) {
        s->clock_ms = !strcmp(w[1], "ms");
        return 0;
    }
    return vram__fail(VRAM_EINVAL,
                      "%s: %s: unknown statement '%s' (use device, process, fault or clock)",
                      s->source, where, w[0]);
}

static int parse_file(sim_backend *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vram__fail(errno == ENOENT ? VRAM_ENOENT : VRAM_EIO, "%s: cannot read '%s': %s",
                          s->source, path, strerror(errno));
    char line[4096];
    unsigned lineno = 0;
    int rc = 0;
    while (!rc && fgets(line, sizeof(line), f)) {
        lineno++;
        char where[300];
        snprintf(where, sizeof(where), "%.250s:%u", path, lineno);
        if (!strchr(line, '\n') && !feof(f))
            rc = vram__fail(VRAM_EINVAL, "%s: %s: line too long", s->source, where);
        else
            rc = parse_line(s, where, line);
    }
    fclose(f);
    if (rc)
        return rc;
    if (s->ndev == 0)
        return vram__fail(VRAM_EINVAL, "%s: %s describes no device (add: device NAME total=SIZE)",
                          s->source, path);
    for (size_t i = 0; i < s->nproc; i++)
        if (s->procs[i].device >= s->ndev)
            return vram__fail(VRAM_EINVAL, "%s: %s: process %u is on device %u, but there are %u",
                              s->source, path, s->procs[i].pid, s->procs[i].device, s->ndev);
    return 0;
}

/* ---- usage ------------------------------------------------------------------ */

/* The device's clock for the query being answered, or the last one answered. */
static uint64_t sim_clock(const sim_backend *s, const sim_device *d, bool advancing)
{
    if (s->clock_ms)
        return vram__now_ms() - s->t0_ms;
    return advancing ? d->queries : (d->queries ? d->queries - 1 : 0);
}

/* The usage of a scripted process at time t; false while it does not exist. */
static bool script_usage(const sim_script_proc *p, uint64_t t, uint64_t *bytes)
{
    bool found = false;
    for (size_t i = 0; i < p->npoints && p->points[i].t <= t; i++) {
        *bytes = p->points[i].bytes;
        found = true;
    }
    return found;
}

static bool pid_alive(uint32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

typedef void (*state_visit)(void *user, uint32_t pid, uint64_t bytes);

/* Calls visit for each live process's usage file of device idx. */
static void state_scan(const sim_backend *s, unsigned idx, state_visit visit, void *user)
{
    if (!s->state_dir[0])
        return;
    DIR *dir = opendir(s->state_dir);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        unsigned dev, pid;
        char tail;
        if (sscanf(e->d_name, "%u-%u%c", &dev, &pid, &tail) != 2 || dev != idx)
            continue;
        if (!pid_alive(pid))
            continue;
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", s->state_dir, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long bytes = 0;
        if (f) {
            if (fscanf(f, "%llu", &bytes) != 1)
                bytes = 0;
            fclose(f);
        }
        visit(user, pid, bytes);
    }
    closedir(dir);
}

static void add_bytes(void *user, uint32_t pid, uint64_t bytes)
{
    (void)pid;
    *(uint64_t *)user += bytes;
}

/* Used bytes of device idx at time t, from every source. */
static uint64_t device_used(const sim_backend *s, unsigned idx, uint64_t t)
{
    const sim_device *d = &s->dev[idx];
    uint64_t used = d->base_used, b;
    for (size_t i = 0; i < s->nproc; i++)
        if (s->procs[i].device == idx && script_usage(&s->procs[i], t, &b))
            used += b;
    state_scan(s, idx, add_bytes, &used);
    return used > d->total ? d->total : used;
}

/* ---- backend methods ----------------------------------------------------------- */

static int sim_open(vram_backend *be, const vram_options *opts)
{
    sim_backend *s = to_sim(be);
    vram__opt_source(opts, VRAM__OPT_SIM, "--sim", s->source, sizeof(s->source));
    vram__strlcpy(s->state_dir, vram__opt_str(opts, VRAM__OPT_SIM_STATE), sizeof(s->state_dir));
    s->t0_ms = vram__now_ms();
    s->procs = calloc(SIM_MAX_PROCS, sizeof(*s->procs));
    if (!s->procs)
        return vram__fail(VRAM_ENOMEM, "out of host memory opening sim");

    const char *spec = vram__opt_str(opts, VRAM__OPT_SIM);
    while (isspace((unsigned char)*spec))
        spec++;
    int rc;
    if (!*spec)
        rc = add_device(s, "default", SIM_DEFAULT_NAME, SIM_DEFAULT_TOTAL, 0);
    else if (*spec == '@')
        rc = parse_file(s, spec + 1);
    else
        rc = parse_short(s, spec);
    if (!rc && s->state_dir[0]) {
        struct stat st;
        if (stat(s->state_dir, &st) || !S_ISDIR(st.st_mode))
            rc = vram__fail(VRAM_ENOENT, "sim state directory '%s' does not exist", s->state_dir);
    }
    if (rc)
        free(s->procs);
    return rc;
}

static void sim_close(vram_backend *be)
{
    free(to_sim(be)->procs);
}

static int sim_device_count(vram_backend *be, unsigned *count_out)
{
    *count_out = to_sim(be)->ndev;
    return 0;
}

static int check_index(const sim_backend *s, unsigned idx)
{
    if (idx >= s->ndev)
        return vram__fail(VRAM_ENODEV, "no device %u: the simulation has %u", idx, s->ndev);
    return 0;
}

static int sim_device_query(vram_backend *be, unsigned idx, vram_device_info *out)
{
    sim_backend *s = to_sim(be);
    int rc = check_index(s, idx);
    if (rc)
        return rc;
    sim_device *d = &s->dev[idx];
    uint64_t used = device_used(s, idx, sim_clock(s, d, true));
    d->queries++;
    vram__strlcpy(out->name, d->name, sizeof(out->name));
    vram__strlcpy(out->uuid, d->uuid, sizeof(out->uuid));
    out->total_bytes = d->total;
    out->used_bytes = used;
    out->free_bytes = used + d->reserved < d->total ? d->total - used - d->reserved : 0;
    out->have = VRAM_HAVE_NAME | VRAM_HAVE_UUID | VRAM_HAVE_MEMORY | VRAM_HAVE_PROCS |
                VRAM_HAVE_PROC_MEM;
    if (d->reserved) {              /* as NVML v2 tells it */
        out->driver_reserved_bytes = d->reserved;
        out->have |= VRAM_HAVE_RESERVED;
    }
    return 0;
}

typedef struct proc_sink {
    vram_proc *buf;
    size_t cap, count;
    unsigned device;
} proc_sink;

static void sink_add(void *user, uint32_t pid, uint64_t bytes)
{
    proc_sink *k = user;
    if (k->count < k->cap) {
        vram_proc *p = &k->buf[k->count];
        memset(p, 0, sizeof(*p));
        p->pid = pid;
        p->device = k->device;
        p->used_bytes = bytes;
        p->have = VRAM_HAVE_PROC_MEM;
        vram__proc_name(pid, p->name, sizeof(p->name));
    }
    k->count++;
}

static int sim_process_list(vram_backend *be, unsigned idx, vram_proc *buf, size_t cap,
                            size_t *count_out)
{
    sim_backend *s = to_sim(be);
    int rc = check_index(s, idx);
    if (rc)
        return rc;
    proc_sink k = { buf, cap, 0, idx };
    uint64_t t = sim_clock(s, &s->dev[idx], false), b;
    for (size_t i = 0; i < s->nproc; i++) {
        const sim_script_proc *p = &s->procs[i];
        if (p->device != idx || !script_usage(p, t, &b))
            continue;
        size_t at = k.count;
        sink_add(&k, p->pid, b);
        if (at < cap)
            vram__strlcpy(buf[at].name, p->name, sizeof(buf[at].name));
    }
    state_scan(s, idx, sink_add, &k);
    *count_out = k.count;
    return k.count > cap ? VRAM_ERANGE : 0;
}

typedef struct own_usage {
    uint32_t pid;
    uint64_t own, others;
} own_usage;

static void split_own(void *user, uint32_t pid, uint64_t bytes)
{
    own_usage *u = user;
    if (pid == u->pid)
        u->own += bytes;
    else
        u->others += bytes;
}

static int sim_set_usage(vram_backend *be, unsigned idx, uint64_t bytes)
{
    sim_backend *s = to_sim(be);
    int rc = check_index(s, idx);
    if (rc)
        return rc;
    if (!s->state_dir[0])
        return vram__fail(VRAM_ENOTSUP, "simulated allocation needs a state directory "
                          "(--sim-state DIR or VRAM_SIM_STATE)");
    char lock_path[4200], path[4200], tmp[4300];
    snprintf(lock_path, sizeof(lock_path), "%s/.lock", s->state_dir);
    snprintf(path, sizeof(path), "%s/%u-%u", s->state_dir, idx, (unsigned)getpid());
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        rc = vram__fail(VRAM_EIO, "cannot lock '%s': %s", lock_path, strerror(errno));
        if (lock >= 0)
            close(lock);
        return rc;
    }
    const sim_device *d = &s->dev[idx];
    own_usage u = { (uint32_t)getpid(), 0, 0 };
    state_scan(s, idx, split_own, &u);
    uint64_t scripted = device_used(s, idx, sim_clock(s, d, false)) - (u.own + u.others);
    uint64_t used_by_others = scripted + u.others;
    uint64_t free_for_us = d->total > used_by_others ? d->total - used_by_others : 0;
    if (bytes > u.own && bytes > free_for_us) {
        char want[32], free_text[32];
        vram_size_format(bytes - u.own, want, sizeof(want));
        vram_size_format(free_for_us > u.own ? free_for_us - u.own : 0, free_text,
                         sizeof(free_text));
        rc = vram__fail(VRAM_EOOM, "simulated device %u (%s) is out of memory: tried to "
                        "allocate %s with %s free", idx, d->name, want, free_text);
    } else if (bytes == 0) {
        unlink(path);
    } else {
        FILE *f = fopen(tmp, "w");
        bool ok = f && fprintf(f, "%llu\n", (unsigned long long)bytes) > 0;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok || rename(tmp, path) != 0)
            rc = vram__fail(VRAM_EIO, "cannot write '%s': %s", path, strerror(errno));
    }
    flock(lock, LOCK_UN);
    close(lock);
    return rc;
}

const vram_backend_ops vram__sim_ops = {
    .version = VRAM_BACKEND_OPS_VERSION,
    .name = "sim",
    .instance_size = sizeof(sim_backend),
    .open = sim_open,
    .close = sim_close,
    .device_count = sim_device_count,
    .device_query = sim_device_query,
    .process_list = sim_process_list,
    .set_usage = sim_set_usage,
};
