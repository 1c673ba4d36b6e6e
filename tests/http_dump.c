/*
 * http_dump: parses the HTTP/1.1 requests on stdin with lib/http and prints
 * what it made of them, one line per request (tests/http_util.h), for the
 * cross-check with real clients (tests/http_clients_test.py).
 *
 * usage: http_dump [CHUNK]   feed CHUNK bytes per call (default: all)
 */
#include <stdio.h>
#include <stdlib.h>

#include "http_util.h"

static size_t chunk_size;

static size_t fixed(void *ctx) {
  (void)ctx;
  return chunk_size;
}

int main(int argc, char **argv) {
  hu_str in = {NULL, 0, 0}, out = {NULL, 0, 0};
  char buf[4096];
  size_t n;
  chunk_size = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 0;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
    hu_add(&in, buf, n);
  }
  hu_run(&out, (const uint8_t *)in.p, in.len, NULL,
         chunk_size ? fixed : hu_whole, NULL);
  if (out.len) {
    fwrite(out.p, 1, out.len, stdout);
  }
  free(in.p);
  free(out.p);
  return 0;
}
