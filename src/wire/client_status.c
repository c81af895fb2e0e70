/* SPDX-License-Identifier: MIT */
/*
 * wire/client_status.c - asks vramd for its view of the cards: the
 * snapshot its ledger counts, every lease of the machine included, and the
 * leases its clients hold (which `vram queue` lists beside the jobs, read
 * from the reply of its first list page: every page carries them).
 *
 * `vram status`, `vram watch` and the Python binding's status() show this
 * when a daemon answers, so that they agree with the dashboard and with
 * what the daemon admits by.  The request goes out as the socket protocol's
 * "status" operation; the reply's snapshot is read back by the monitor's
 * own reader of the JSON it writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "monitor/monitor.h"
#include "wire/protocol.h"

int vram_client_snapshot(vram_client *c, vram_snapshot **out)
{
    if (!c || !out)
        return vram__fail(VRAM_EINVAL, "vram_client_snapshot: NULL argument");
    *out = NULL;
    char *reply = NULL;
    int rc = vram_client_call(c, "{\"op\":\"status\"}", 10000, &reply);
    if (rc)
        return rc;
    char err[256];
    vram__json_doc *doc = NULL;
    rc = vram__json_read(reply, strlen(reply), 0, &doc, err, sizeof(err));
    if (rc)
        rc = vram__fail(rc, "vramd's status reply: %s", err);
    else
        rc = vram__snapshot_from_jv(vram__jv_get(vram__json_root(doc), "status"), out);
    if (!rc)
        (*out)->from_daemon = 1;
    vram__json_doc_free(doc);
    vram_free(reply);
    return rc;
}

/* The client leases a list reply carries (every page does). */
int vram__list_reply_leases(const vram__jv *root, vram_lease_info *buf, size_t cap, size_t *count_out)
{
    const vram__jv *arr = vram__jv_get(root, "leases");
    size_t n = arr && arr->kind == VRAM__JV_ARRAY ? arr->n : 0;
    for (size_t i = 0; i < n && i < cap; i++) {
        const vram__jv *o = arr->items[i];
        vram_lease_info *l = &buf[i];
        uint64_t device = 0, pid = 0, uid = UINT32_MAX;
        memset(l, 0, sizeof(*l));
        vram__jv_uint(vram__jv_get(o, "uid"), &uid);
        l->uid = uid <= UINT32_MAX ? (uint32_t)uid : UINT32_MAX;
        vram__jv_uint(vram__jv_get(o, "id"), &l->id);
        vram__jv_uint(vram__jv_get(o, "device"), &device);
        vram__jv_uint(vram__jv_get(o, "bytes"), &l->bytes);
        vram__jv_uint(vram__jv_get(o, "pid"), &pid);
        vram__jv_uint(vram__jv_get(o, "held_ms"), &l->held_ms);
        const char *holder = vram__jv_str(vram__jv_get(o, "holder"));
        vram__strlcpy(l->holder, holder ? holder : "", sizeof(l->holder));
        const char *state = vram__jv_str(vram__jv_get(o, "state"));
        if (state && !strcmp(state, "waiting")) {
            const char *reason = vram__jv_str(vram__jv_get(o, "reason"));
            l->waiting = 1;
            vram__jv_uint(vram__jv_get(o, "waited_ms"), &l->held_ms);
            vram__strlcpy(l->reason, reason ? reason : "", sizeof(l->reason));
        }
        l->device = (unsigned)device;
        l->pid = (uint32_t)pid;
    }
    *count_out = n;
    return n > cap ? vram__fail(VRAM_ERANGE, "%zu client leases, room for %zu", n, cap) : 0;
}

int vram_client_leases(vram_client *c, vram_lease_info *buf, size_t cap, size_t *count_out)
{
    if (!c || !count_out || (cap && !buf))
        return vram__fail(VRAM_EINVAL, "vram_client_leases: NULL argument");
    *count_out = 0;
    char *reply = NULL;
    int rc = vram_client_call(c, "{\"op\":\"list\",\"limit\":1}", 30000, &reply);
    if (rc)
        return rc;
    char err[256];
    vram__json_doc *doc = NULL;
    rc = vram__json_read(reply, strlen(reply), 0, &doc, err, sizeof(err));
    vram_free(reply);
    if (rc)
        return vram__fail(rc, "vramd's list reply: %s", err);
    rc = vram__list_reply_leases(vram__json_root(doc), buf, cap, count_out);
    vram__json_doc_free(doc);
    return rc;
}
