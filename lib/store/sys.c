/* The real system calls behind the file store's store_sys table. */
#if !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE 1 /* flock in <sys/file.h> besides POSIX */
#endif

#include "store/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

_Static_assert(STORE_LOCK_EX == LOCK_EX && STORE_LOCK_NB == LOCK_NB,
               "flock operation numbers");

static int sys_openat(int dirfd, const char *path, int flags, mode_t mode) {
  return openat(dirfd, path, flags, mode);
}

static int sys_fdatasync(int fd) {
#if defined(__APPLE__)
  return fsync(fd);
#else
  return fdatasync(fd);
#endif
}

static const store_sys real_sys = {
    sys_openat, close,     read,     pread,    write,  writev,
    fsync,      sys_fdatasync,       ftruncate, renameat, unlinkat,
    mkdir,      flock,     fstat,    opendir,  readdir, closedir,
};

const store_sys *store_sys_default(void) { return &real_sys; }
