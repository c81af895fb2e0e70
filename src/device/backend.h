/* SPDX-License-Identifier: MIT */
/*
 * device/backend.h - the contract every device backend fulfils.
 *
 * A backend is a table of functions (versioned: it grows only by appending
 * members) and an instance that embeds struct vram_backend first and keeps
 * all of its state there, never in statics.  Callers never touch the table:
 * they use the vram__backend_*() wrappers, which check the version, turn a
 * missing optional method into VRAM_ENOTSUP and host fault injection, so a
 * test can make "the 3rd device query fail" on any backend.
 */
#ifndef VRAM_DEVICE_BACKEND_H
#define VRAM_DEVICE_BACKEND_H

#include "core/options.h"

typedef struct vram_backend vram_backend;

#define VRAM_BACKEND_OPS_VERSION 1

typedef struct vram_backend_ops {
    int version;                    /* VRAM_BACKEND_OPS_VERSION it was built for */
    const char *name;               /* "nvml", "sim" */
    size_t instance_size;           /* size of the backend's own struct */
    /* Opens from the options (library path, spec...).  On failure the
     * backend has released everything itself; close is not called. */
    int (*open)(vram_backend *be, const vram_options *opts);
    void (*close)(vram_backend *be);
    int (*device_count)(vram_backend *be, unsigned *count_out);
    int (*device_query)(vram_backend *be, unsigned idx, vram_device_info *out);
    /* Optional: processes on a device (see vram_device_processes). */
    int (*process_list)(vram_backend *be, unsigned idx, vram_proc *buf, size_t cap,
                        size_t *count_out);
    /* Optional: this process's usage on a simulated device. */
    int (*set_usage)(vram_backend *be, unsigned idx, uint64_t bytes);
    /* Optional: the number of the device's /dev/nvidiaN (see vram_device_minor). */
    int (*device_minor)(vram_backend *be, unsigned idx, unsigned *minor_out);
} vram_backend_ops;

/* The calls fault injection can target. */
enum { VRAM__CALL_COUNT, VRAM__CALL_QUERY, VRAM__CALL_PROCESSES, VRAM__CALL_KINDS };

#define VRAM__MAX_FAULTS 16

typedef struct vram__fault {
    int call;                       /* VRAM__CALL_* */
    uint64_t nth;                   /* 1-based number of the first failing call */
    uint64_t times;                 /* how many calls in a row fail */
    int err;                        /* what they return */
} vram__fault;

struct vram_backend {
    const vram_backend_ops *ops;
    uint64_t calls[VRAM__CALL_KINDS];
    vram__fault faults[VRAM__MAX_FAULTS];
    unsigned nfaults;
};

/* The backends this build knows, in the order "auto" tries them. */
extern const vram_backend_ops vram__nvml_ops;
extern const vram_backend_ops vram__sim_ops;

/* Picks and opens the backend the options ask for ("auto": nvml, else sim
 * with a notice).  notice gets why sim was chosen, or "". */
int vram__backend_select(const vram_options *opts, vram_backend **out, char *notice, size_t cap);

/* Allocates and opens the named backend.  *out is NULL on failure. */
int vram__backend_open(const char *name, const vram_options *opts, vram_backend **out);
void vram__backend_close(vram_backend *be);

int vram__backend_device_count(vram_backend *be, unsigned *count_out);
int vram__backend_device_query(vram_backend *be, unsigned idx, vram_device_info *out);
int vram__backend_process_list(vram_backend *be, unsigned idx, vram_proc *buf, size_t cap,
                               size_t *count_out);
int vram__backend_set_usage(vram_backend *be, unsigned idx, uint64_t bytes);
int vram__backend_device_minor(vram_backend *be, unsigned idx, unsigned *minor_out);

/* Makes calls nth .. nth+times-1 of kind `call` return err. */
int vram__backend_inject_fault(vram_backend *be, int call, uint64_t nth, uint64_t times, int err);

/* Reads the name of a process from /proc (empty when gone). */
void vram__proc_name(uint32_t pid, char *buf, size_t cap);

/* The source a value came from, for messages: "--sim" or "VRAM_SIM". */
void vram__opt_source(const vram_options *o, int id, const char *flag, char *buf, size_t cap);

#endif /* VRAM_DEVICE_BACKEND_H */
