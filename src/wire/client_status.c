/*
 * wire/client_status.c - asks vramd for its view of the cards: the
 * snapshot its ledger counts, every lease of the machine included.
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
