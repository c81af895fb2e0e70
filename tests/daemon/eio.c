/* SPDX-License-Identifier: MIT */
/*
 * tests/daemon/eio.c - an LD_PRELOAD library for vramd's tests of a
 * failing disk: fdatasync fails with EIO while the file EIO_WHEN names
 * exists, and is the real one otherwise.  Built by the tests that use it
 * (daemon.sh build_preload).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int fdatasync(int fd)
{
    const char *when = getenv("EIO_WHEN");
    if (when && access(when, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
