/* SPDX-License-Identifier: MIT */
/*
 * cli/cmd_status.c - `vram status`: every GPU and the host, now.
 *
 * The table is for people (sizes in GiB with one decimal, a usage bar per
 * device, the processes); --json prints vram_snapshot_to_json() for scripts,
 * bytes as integers.  Simulated devices are said to be simulated, first.
 * When vramd answers on its socket the figures are the daemon's (its ledger
 * counts every lease of the machine as ours), the same the dashboard and
 * the Python binding show; --local reads the devices here instead.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const cli_flag flags[] = {
    { "json", 0, NULL, "print one JSON document (bytes as integers)", false },
    { "local", 0, NULL, "read the devices here, not vramd's view (leases of this process only)", false },
    { NULL, 0, NULL, NULL, false },
};

static void print_device(const vram_device_snapshot *d, bool unicode)
{
    const vram_device_info *in = &d->info;
    char a[32], b[32], c[32], e[32];
    if (d->error == VRAM_ELOST) {
        printf("GPU %u: LOST, takes no work (capacity 0): %s\n\n", in->index, d->error_text);
        return;
    }
    if (d->error) {
        printf("GPU %u: cannot be read: %s\n\n", in->index, d->error_text);
        return;
    }
    printf("GPU %u: %s  (%s)\n  ", in->index, in->name, in->uuid);
    cli_bar(stdout, in->used_bytes, in->total_bytes, 40, unicode);
    printf(" %s of %s used (%.0f%%)\n", cli_gib(in->used_bytes, a, sizeof(a)),
           cli_gib(in->total_bytes, b, sizeof(b)),
           in->total_bytes ? 100.0 * (double)in->used_bytes / (double)in->total_bytes : 0.0);
    printf("  free %s   margin %s   capacity %s   safe available %s\n",
           cli_gib(in->free_bytes, a, sizeof(a)), cli_gib(d->margin_bytes, b, sizeof(b)),
           cli_gib(d->capacity_bytes, e, sizeof(e)), cli_gib(d->safe_available_bytes, c, sizeof(c)));
    printf("  ours %s (vram leases)   others %s", cli_gib(d->leased_bytes, a, sizeof(a)),
           cli_gib(d->others_bytes, b, sizeof(b)));
    if (in->have & VRAM_HAVE_RESERVED)
        printf("   driver reserved %s", cli_gib(in->driver_reserved_bytes, e, sizeof(e)));
    printf("\n");
    if (d->procs_status)
        printf("  processes: not visible (%s)\n", vram_strerror(d->procs_status));
    else if (d->nprocs == 0)
        printf("  processes: none\n");
    else {
        printf("  %8s  %-20s %10s\n", "PID", "PROCESS", "USED");
        for (size_t i = 0; i < d->nprocs; i++) {
            const vram_proc *p = &d->procs[i];
            char name[64];
            printf("  %8u  %-20.20s %10s\n", p->pid, vram_text_escape(*p->name ? p->name : "?", name, sizeof(name)),
                   p->have & VRAM_HAVE_PROC_MEM ? cli_gib(p->used_bytes, a, sizeof(a)) : "n/a");
        }
    }
    printf("\n");
}

static void print_host(const vram_host_info *h)
{
    char a[32], b[32];
    printf("Host: RAM %s available of %s   %u CPUs, load %.2f %.2f %.2f\n",
           cli_gib(h->ram_available_bytes, a, sizeof(a)), cli_gib(h->ram_total_bytes, b, sizeof(b)),
           h->cpu_count, h->load_1m, h->load_5m, h->load_15m);
    printf("      disk %s free of %s at %s\n", cli_gib(h->disk_free_bytes, a, sizeof(a)),
           cli_gib(h->disk_total_bytes, b, sizeof(b)), h->disk_path);
}

static int run(cli_args *a)
{
    if (a->nrest)
        return cli_error(a, EXIT_USAGE, "unexpected argument '%s'", a->rest[0]);
    vram_ctx *ctx;
    int rc = cli_open(a, &ctx);
    if (rc)
        return rc;
    vram_snapshot *s = NULL;
    rc = cli_has(a, "local") ? VRAM_ENOENT : cli_daemon_snapshot(a, NULL, &s);
    if (rc && rc != VRAM_ENOENT) {
        rc = cli_fail(a, rc, "cannot read vramd's status");
        vram_ctx_close(ctx);
        return rc;
    }
    if (rc && (rc = vram_snapshot_take(ctx, NULL, &s))) {
        rc = cli_fail(a, rc, "cannot read the devices");
        vram_ctx_close(ctx);
        return rc;
    }
    int failed = 0;
    for (unsigned i = 0; i < s->ndevices; i++)
        failed += s->devices[i].error != 0;
    if (cli_has(a, "json")) {
        char *json;
        if ((rc = vram_snapshot_to_json(s, &json)) == 0) {
            printf("%s\n", json);
            vram_free(json);
        }
    } else {
        if (s->simulated)
            printf("SIMULATED DEVICES, %s\n", s->notice);
        else
            printf("backend nvml, %u GPU%s\n", s->ndevices, s->ndevices == 1 ? "" : "s");
        if (s->from_daemon)
            printf("as vramd counts them: ours is every vram lease of the machine\n");
        printf("\n");
        bool unicode = cli_unicode(stdout);
        for (unsigned i = 0; i < s->ndevices; i++)
            print_device(&s->devices[i], unicode);
        print_host(&s->host);
    }
    vram_snapshot_free(s);
    vram_ctx_close(ctx);
    return rc ? cli_fail(a, rc, NULL) : failed ? EXIT_FAIL : EXIT_OK;
}

const cli_command cmd_status = {
    .name = "status",
    .usage = "[--json]",
    .summary = "show every GPU's memory (total, used, free, safe available), its processes, and the host",
    .description =
        "Safe available is free memory less the safety margin (--margin, default 10% of\n"
        "total) less what vram leases have reserved but not used yet.  Ours is memory\n"
        "reserved through vram; others is used memory that no lease explains.  When\n"
        "vramd answers on its socket, these are its figures (every lease of the machine,\n"
        "jobs' and clients'); --local reads the devices in this process instead.\n"
        "Exit status: 0, 1 when a device could not be read, 2 for bad input.",
    .flags = flags,
    .run = run,
};
