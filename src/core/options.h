/* SPDX-License-Identifier: MIT */
/*
 * core/options.h - the one table of settings, and typed access for modules.
 *
 * Each row: the enum tail, the name (flag --name, environment VRAM_NAME),
 * the default, the kind that checks its values, the accepted values (for
 * ENUM kinds) and a line of help.  Add a setting by adding a row; the
 * command's --help, the environment reader and the checks follow.
 */
#ifndef VRAM_CORE_OPTIONS_H
#define VRAM_CORE_OPTIONS_H

#include "core/core.h"

#define VRAM_OPTION_LIST(X)                                                             \
    X(BACKEND, "backend", "auto", ENUM, "auto|nvml|sim",                                  \
      "device backend: nvml (the NVIDIA driver), sim (simulated cards), auto (nvml if "   \
      "it finds a GPU, else sim)")                                                        \
    X(SIM, "sim", "", STRING, NULL,                                                      \
      "simulated cards: NAME:TOTAL[:USED],... (e.g. \"T4:14.7GiB:8.5GiB\") or @FILE; "    \
      "empty: one 24 GiB card")                                                           \
    X(SIM_STATE, "sim-state", "", PATH, NULL,                                             \
      "directory shared by processes that allocate on the simulated cards")              \
    X(MARGIN, "margin", "10%", MARGIN, NULL,                                              \
      "safety margin kept free on every device: a percent of total or a size")           \
    X(INTERVAL, "interval", "100ms", DURATION, NULL,                                      \
      "sampling interval of the monitor (e.g. 100ms, 1s; a bare number is ms)")          \
    X(NVML_LIBRARY, "nvml-library", "", PATH, NULL,                                       \
      "path of libnvidia-ml to load instead of libnvidia-ml.so.1")                       \
    X(DISK, "disk", ".", PATH, NULL,                                                      \
      "path whose filesystem's free space the host snapshot reports")                    \
    X(HISTORY, "history", "", PATH, NULL,                                                 \
      "the run history database (default: $XDG_STATE_HOME/vram/history.db)")            \
    X(SOCKET, "socket", "", PATH, NULL,                                                   \
      "the daemon's Unix socket (default: $XDG_RUNTIME_DIR/vram/vramd.sock, else "        \
      "~/.local/state/vram/vramd.sock)")                                                 \
    X(SOCKET_GROUP, "socket-group", "", STRING, NULL,                                     \
      "a group that may use the daemon's socket too (default: its owner only)")           \
    X(GROUP_JOBS, "group-jobs", "no", ENUM, "no|yes",                                     \
      "yes: a daemon not run as root takes jobs from every user who may use its socket "  \
      "(--socket-group), and they run as the DAEMON'S user: whoever can use the socket "  \
      "can run code as that user, as with Docker's socket")                              \
    X(SPAWNER, "spawner", "yes", ENUM, "yes|no",                                          \
      "yes: the daemon forks its runners from one process it starts (vram __spawner), "   \
      "sparing each runner an exec; no: it forks and execs each runner itself")          \
    X(DB, "db", "", PATH, NULL,                                                           \
      "the daemon's job queue database (default: $XDG_STATE_HOME/vram/queue.db)")        \
    X(HTTP, "http", "127.0.0.1:7860", HOSTPORT, NULL,                                     \
      "the daemon's dashboard and /metrics: ADDR:PORT (port 0 picks a free one)")         \
    X(TOKEN_FILE, "token-file", "", PATH, NULL,                                           \
      "where the daemon writes the token that changes over HTTP need (default: "          \
      "$XDG_RUNTIME_DIR/vram/http-token, else ~/.local/state/vram/http-token)")          \
    X(LOG, "log", "warn", ENUM, "error|warn|info|debug", "how much the library logs on stderr") \
    X(PROFILES, "profiles", "", STRING, NULL,                                             \
      "model profile folders, ':'-separated, searched in order; empty: your calibrated "  \
      "copies (~/.config/vram/profiles) then the shipped ones")                          \
    X(MODE, "mode", "auto", STRING, NULL,                                                 \
      "tier the planner uses: auto (the highest that fits) or a tier's name, which is "   \
      "refused with the numbers when it does not fit")                                   \
    X(HOST_RAM, "host-ram", "auto", STRING, NULL,                                         \
      "host RAM a plan's offload may pin: auto (the host's available RAM now), off, or "  \
      "a size (e.g. 64GiB)")                                                              \
    X(KILL_WAIT, "kill-wait", "5s", DURATION, NULL,                                       \
      "how long a job's processes have between SIGTERM (a cancel, its time limit, or "    \
      "its command's end leaving them) and SIGKILL, as Slurm's KillWait: time for a "     \
      "pipeline to save its work")

enum {
#define VRAM__OPT_ENUM(id, name, def, kind, choices, help) VRAM__OPT_##id,
    VRAM_OPTION_LIST(VRAM__OPT_ENUM)
#undef VRAM__OPT_ENUM
    VRAM__OPT_COUNT
};

/* Where a value came from, for messages. */
enum { VRAM__FROM_DEFAULT, VRAM__FROM_ENV, VRAM__FROM_FLAG };

struct vram_options {
    char *value[VRAM__OPT_COUNT];   /* NULL: the default */
    unsigned char from[VRAM__OPT_COUNT];
};

/* The text of option id (its default when unset).  Never NULL. */
const char *vram__opt_str(const vram_options *o, int id);

/* Typed readers; the value was checked when set, so these cannot fail for
 * a value that came through vram_options_set. */
uint64_t vram__opt_ms(const vram_options *o, int id);
void vram__opt_margin(const vram_options *o, double *percent, uint64_t *bytes, int *is_percent);

/* Copies src into a new set. */
int vram__options_clone(const vram_options *src, vram_options **out);

/* Like vram_options_load_env, but a bad value warns once on stderr and the
 * default stays: the library's own reading inside someone else's process. */
void vram__options_load_env_lenient(vram_options *o);

/* Index of the option called name, or -1. */
int vram__option_find(const char *name);

#endif /* VRAM_CORE_OPTIONS_H */
