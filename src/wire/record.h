/* SPDX-License-Identifier: MIT */
/*
 * wire/record.h - a daemon job's record as it crosses the wire (see record.c).
 *
 * vramd sizes a submitted job once and keeps one record of it in the job
 * store; its runner, started as `vram run --daemon-job N`, gets that record
 * in the reply to its claim, with the budget it was admitted with, and
 * nothing else about the job travels on its command line.
 */
#ifndef VRAM_WIRE_RECORD_H
#define VRAM_WIRE_RECORD_H

#include "core/json_read.h"
#include "wire/queue.h"

/* The job as its runner needs it.  Every string is owned (free with
 * vram__record_free). */
typedef struct vram__record {
    char **argv;                    /* NULL-terminated; argv[0] is there */
    char **settings;                /* "key=value", nsettings of them */
    size_t nsettings;
    char *model;                    /* "" when sized by bytes */
    char *ladder;                   /* "" for none */
    char *name;                     /* "" for none */
    char tier[32];                  /* the tier it was sized at, "" none */
    uint64_t vram_bytes;            /* what was asked for (0: from the model) */
    int device_pref;                /* -1: any */
    uint64_t time_limit_ms;         /* 0: none */
} vram__record;

/* Writes the record of row as the value of the key the caller has written
 * (the claim reply's "job"). */
void vram__record_write(vram__json *j, const vram__job *row);

/* Reads a record written by vram__record_write.  VRAM_EPARSE names what is
 * missing or wrong; VRAM_ENOMEM.  *out is cleared first. */
int vram__record_read(const vram__jv *v, vram__record *out);
void vram__record_free(vram__record *r);

#endif /* VRAM_WIRE_RECORD_H */
