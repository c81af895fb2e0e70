/* SPDX-License-Identifier: MIT */
/*
 * tests/shim/prog_host.c - a stand-in runner for the shim's tests: makes the
 * job's region with runner/enforce.c, as `vram run` does, runs a command
 * under the shim, and prints the count as it changes.
 *
 *   host MODE BUDGET_BYTES[,BUDGET_BYTES...] -- COMMAND...
 *
 * A list gives device 0, 1, ... each its own budget (the rest none).
 * HOST_CARD_FREE=BYTES says card 0 had that much free at the start (as the
 * runner says from its device query).
 * Prints "child pid=N", then "count used=BYTES" whenever the job's count
 * changes (polled every 10 ms, dead processes' bytes given back as the
 * runner does), and at the end "final used=.. peak=.. over=.. refused=..
 * processes=.. status=..".
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/runner.h"

static void put(void *user, const char *key, const char *value)
{
    (void)user;
    setenv(key, value, 1);
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--")) {
        fprintf(stderr, "usage: host MODE BUDGET_BYTES -- COMMAND...\n");
        return 2;
    }
    vram__enforce e;
    if (vram__enforce_open(&e, argv[1], strtoull(argv[2], NULL, 10))) {
        fprintf(stderr, "host: %s\n", vram_last_error());
        return 2;
    }
    if (strchr(argv[2], ',')) {
        char *p = argv[2];
        for (int d = 0; d < VRAM__ENFORCE_DEVICES; d++) {
            vram__enforce_budget(&e, d, *p ? strtoull(p, &p, 10) : 0);
            if (*p == ',')
                p++;
        }
    }
    if (getenv("HOST_CARD_FREE"))
        vram__enforce_card_free(&e, 0, strtoull(getenv("HOST_CARD_FREE"), NULL, 10));
    vram__enforce_env(&e, put, NULL);
    vram__enforce_inherit(&e, true);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    vram__enforce_inherit(&e, false);
    printf("child pid=%d\n", (int)pid);
    fflush(stdout);
    int status = 0;
    uint64_t last = UINT64_MAX;
    vram__enforce_count c;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        vram__enforce_read(&e, &c);
        if (c.used_bytes != last) {
            printf("count used=%" PRIu64 "\n", c.used_bytes);
            fflush(stdout);
            last = c.used_bytes;
        }
        if (w == pid)
            break;
        usleep(10000);
    }
    /* Grandchildren that outlived the command still count until they go. */
    for (int i = 0; i < 200 && c.used_bytes; i++) {
        usleep(10000);
        vram__enforce_read(&e, &c);
    }
    printf("final used=%" PRIu64 " peak=%" PRIu64 " over=%" PRIu64 " refused=%" PRIu64
           " processes=%u status=%d\n", c.used_bytes, c.peak_bytes, c.over_bytes, c.refused, c.processes,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    for (int d = 0; d < VRAM__ENFORCE_DEVICES; d++)
        if (c.dev_refused[d])
            printf("device %d refused=%" PRIu64 "\n", d, c.dev_refused[d]);
    vram__enforce_close(&e);
    return 0;
}
