/*
 * Runs a fuzz target's LLVMFuzzerTestOneInput over corpus files without
 * libFuzzer, so that any compiler can replay a corpus as a plain test.
 *
 * usage: <target>_fuzz_replay FILE|DIR...
 * Directories are walked recursively; names starting with '.' are skipped.
 * Exits 0 when at least one input ran (a crash aborts the process), 1 on a
 * usage or I/O error or when no input was found.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long ninputs;

/* run_file hands one file to the target in a buffer of exactly its size. */
static int run_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  uint8_t *data = NULL;
  size_t size = 0, cap = 0, n;
  int rc = 0;

  if (fp == NULL) {
    perror(path);
    return -1;
  }
  for (;;) {
    if (size == cap) {
      uint8_t *bigger;
      cap = cap ? cap * 2 : 4096;
      bigger = realloc(data, cap);
      if (bigger == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        rc = -1;
        break;
      }
      data = bigger;
    }
    n = fread(data + size, 1, cap - size, fp);
    size += n;
    if (n == 0) {
      if (ferror(fp)) {
        perror(path);
        rc = -1;
      }
      break;
    }
  }
  fclose(fp);
  if (rc == 0) {
    /* An exact-size copy, so that ASan sees reads past the input. */
    uint8_t *exact = malloc(size ? size : 1);
    if (exact == NULL) {
      fprintf(stderr, "%s: out of memory\n", path);
      rc = -1;
    } else {
      if (size) {
        memcpy(exact, data, size);
      }
      LLVMFuzzerTestOneInput(exact, size);
      free(exact);
      ++ninputs;
    }
  }
  free(data);
  return rc;
}

static int run_path(const char *path) {
  struct stat st;
  DIR *dir;
  struct dirent *ent;
  int rc = 0;

  if (stat(path, &st) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    return run_file(path);
  }
  dir = opendir(path);
  if (dir == NULL) {
    perror(path);
    return -1;
  }
  while ((ent = readdir(dir)) != NULL) {
    size_t len = strlen(path) + 1 + strlen(ent->d_name) + 1;
    char *child;
    if (ent->d_name[0] == '.') {
      continue;
    }
    child = malloc(len);
    if (child == NULL) {
      rc = -1;
      break;
    }
    snprintf(child, len, "%s/%s", path, ent->d_name);
    if (run_path(child) != 0) {
      rc = -1;
    }
    free(child);
  }
  closedir(dir);
  return rc;
}

int main(int argc, char **argv) {
  int i, rc = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 1;
  }
  for (i = 1; i < argc; ++i) {
    if (run_path(argv[i]) != 0) {
      rc = 1;
    }
  }
  printf("replayed %lu input%s\n", ninputs, ninputs == 1 ? "" : "s");
  if (ninputs == 0) {
    fprintf(stderr, "%s: no inputs found\n", argv[0]);
    rc = 1;
  }
  return rc;
}
