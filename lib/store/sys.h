/*
 * The file store's system calls.  Every call the store makes to the
 * operating system goes through one of these pointers, so that tests can
 * install a table that fails the Nth write, fsync, rename or open, writes
 * short, or kills the process at a chosen step.  store_sys_default()
 * routes to the real calls.  A table is given to store_file_open_sys and
 * used by that store until it is closed; it is never copied or changed.
 *
 * Semantics are those of the POSIX calls of the same names (flock is the
 * BSD/Linux call).  A failing call returns -1 (NULL for opendir, NULL with
 * errno set for readdir) and sets errno.
 */
#ifndef TERN_STORE_SYS_H
#define TERN_STORE_SYS_H

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tern.h"

typedef struct store_sys {
  int (*openat)(int dirfd, const char *path, int flags, mode_t mode);
  int (*close)(int fd);
  ssize_t (*read)(int fd, void *buf, size_t n);
  ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
  ssize_t (*write)(int fd, const void *buf, size_t n);
  ssize_t (*writev)(int fd, const struct iovec *iov, int iovcnt);
  int (*fsync)(int fd);     /* directories, and files under ALWAYS etc. */
  int (*fdatasync)(int fd); /* segment data (fsync where unavailable)   */
  int (*ftruncate)(int fd, off_t len);
  int (*renameat)(int olddirfd, const char *oldpath, int newdirfd,
                  const char *newpath);
  int (*unlinkat)(int dirfd, const char *path, int flags);
  int (*mkdir)(const char *path, mode_t mode);
  int (*flock)(int fd, int op);
  int (*fstat)(int fd, struct stat *st);
  DIR *(*opendir)(const char *path);
  struct dirent *(*readdir)(DIR *dir);
  int (*closedir)(DIR *dir);
} store_sys;

/* The flock operations, as numbers, so that tables need not include
   <sys/file.h> (which hides flock under strict POSIX). */
#define STORE_LOCK_EX 2
#define STORE_LOCK_NB 4

const store_sys *store_sys_default(void);

/*
 * store_file_open_sys is tern_store_file_open with the system calls of
 * |sys| (NULL: store_sys_default()).  |sys| must stay valid until the
 * store is closed.
 */
int store_file_open_sys(tern_store_file **pstore, const char *dir,
                        const tern_store_file_options *o, const tern_mem *mem,
                        const store_sys *sys);

#endif
