/*
 * Fuzz target for the file store's recovery across segments
 * (lib/store/recover.c): the directory listing, segment headers, the
 * length checks between segments, base segments, temporary files and what
 * is named like a segment but is none.  The input describes the files of a
 * store directory; they are made in a scratch directory, and then:
 *
 *  - a strict open either refuses with TERN_ERR_STORE or succeeds;
 *  - a non-strict open always succeeds, and loads only (key, value) pairs
 *    that some generated record holds; when strict opened too, both load
 *    the same;
 *  - an append then succeeds (the store stays usable whatever the names;
 *    only a full segment that really has the number 4294967295 leaves no
 *    number for the next),
 *    a reopen loads the same plus that record, and another reopen the same
 *    again;
 *  - no descriptor, directory stream or allocation leaks.
 *
 * Input: byte 0 picks the options (bits 0-1: segment size 1, 2, 4 or 64
 * KiB); then files, each [kind][number] and what the kind needs:
 *   kind & 7 = 0 a segment: [flags][salt][nrec] then nrec x [key][vlen],
 *                then [ndamage] x [offset (2)][xor], then [cut]
 *                flags: 1 base, 2 format 1, 4 prev_size = the previous
 *                segment's size, 8 prev_size = 4096, 16/32 break header
 *                copy 1/2
 *              1 a regular file of [len] raw bytes
 *              2 a directory, 3 a FIFO, 4 a dangling symlink,
 *              5 a symlink to the file made before it,
 *              6 a temporary file "N.log.tmp" of [len] raw bytes
 *              7 a kept file "N.log.corrupt" of [len] raw bytes
 * number: 0xff is 4294967295, 0xfe 999999, else the byte itself.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../store_util.h"
#include "fuzz_util.h"
#include "store/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "recover_fuzz: %s:%d: %s\n", __FILE__, __LINE__,     \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

#define MAX_FILES 12
#define MAX_PAIRS 512

/* The (key, value) pairs some generated record holds. */
static struct pair {
  char key[4];
  uint8_t value[256];
  size_t len;
} pairs[MAX_PAIRS];
static size_t npairs;

static int known(const su_entry *e) {
  for (size_t i = 0; i < npairs; ++i) {
    if (e->keylen == 2 && memcmp(e->key, pairs[i].key, 2) == 0 &&
        e->valuelen == pairs[i].len &&
        memcmp(e->value, pairs[i].value, e->valuelen) == 0) {
      return 1;
    }
  }
  return e->keylen == 3 && memcmp(e->key, "new", 3) == 0;
}

static uint32_t number_of(uint8_t b) {
  return b == 0xff ? UINT32_MAX : b == 0xfe ? 999999u : b;
}

/* make_segment writes one segment from the input; returns its size. */
static size_t make_segment(input *in, const char *path, uint32_t number,
                           size_t prev) {
  static uint8_t img[65536];
  uint8_t flags = take(in);
  uint32_t version = (flags & 2) ? 1 : SEG_VERSION;
  size_t hs = rec_head_size(version), len = SEG_DATA_START;
  seg_header h;
  unsigned nrec, ndamage, cut;

  h.version = version;
  h.flags = (flags & 1) ? SEG_BASE : 0;
  h.number = number;
  h.salt = (uint32_t)take(in) * 0x9e3779b1u;
  h.prev_size = (flags & 4) ? prev : (flags & 8) ? 4096 : 0;
  seg_header_encode(img, &h);
  memcpy(img + SEG_HEADER_SIZE, img, SEG_HEADER_SIZE);
  nrec = take(in) % 16;
  for (unsigned i = 0; i < nrec; ++i) {
    uint8_t k = take(in), vlen = take(in);
    uint8_t *p = img + len;
    int del = (k & 0x80) != 0;
    char key[3];
    if (len + hs + 2 + 256 > sizeof(img)) {
      break;
    }
    key[0] = 'k';
    key[1] = (char)('a' + (k & 15));
    memcpy(p + hs, key, 2);
    if (del) {
      vlen = 0;
    }
    for (unsigned j = 0; j < vlen; ++j) {
      p[hs + 2 + j] = (uint8_t)(k * 31 + j + vlen);
    }
    if (version >= 2) {
      rec_encode_head(p, h.salt, del ? REC_OP_DEL : REC_OP_SET, p + hs, 2,
                      p + hs + 2, vlen);
    } else {
      rec_encode_head_v1(p, h.salt, del ? REC_OP_DEL : REC_OP_SET, p + hs, 2,
                         p + hs + 2, vlen);
    }
    if (!del && npairs < MAX_PAIRS) {
      memcpy(pairs[npairs].key, key, 2);
      memcpy(pairs[npairs].value, p + hs + 2, vlen);
      pairs[npairs++].len = vlen;
    }
    len += hs + 2 + vlen;
  }
  if (flags & 16) {
    img[20] ^= 1;
  }
  if (flags & 32) {
    img[SEG_HEADER_SIZE + 20] ^= 1;
  }
  ndamage = take(in) % 4;
  for (unsigned i = 0; i < ndamage; ++i) {
    size_t off = (size_t)take(in) | (size_t)take(in) << 8;
    uint8_t x = take(in);
    if (len > 0) {
      img[off % len] ^= x;
    }
  }
  cut = take(in);
  if (cut != 0) {
    len = len * cut / 256;
  }
  su_write_file(path, img, len);
  return len;
}

static void make_raw(input *in, const char *path) {
  uint8_t buf[256];
  /* the next |len| input bytes, zeros past its end, as take() gives them */
  size_t len = take(in);
  size_t have = (size_t)(in->end - in->p);
  size_t n = len < have ? len : have;
  memcpy(buf, in->p, n);
  memset(buf + n, 0, len - n);
  in->p += n;
  su_write_file(path, buf, len);
}

static char *dir;

static void remove_dir(void) { su_rmtree(dir); }

static void clear_dir(void) {
  su_rmtree(dir);
  if (mkdir(dir, 0777) != 0) {
    abort();
  }
}

static int open_store(tern_store_file **s, const char *path,
                      const tern_store_file_options *o, tern_mem *mem) {
  return store_file_open_sys(s, path, o, mem, &su_sys);
}

static void load(tern_store_file *s, su_loaded *l) {
  memset(l, 0, sizeof(*l));
  REQUIRE(su_load(s, l) == 0);
  REQUIRE(l->duplicates == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, data + size};
  static const size_t seg_sizes[4] = {1024, 2048, 4096, 65536};
  tern_store_file_options o, so;
  tern_store_file *s;
  tern_mem mem = fuzz_mem();
  su_loaded strict_l, a, b, c;
  tern_store_record r;
  char prev_path[64] = "";
  size_t prev_size = 0;
  int strict_ok, rv;

  if (size < 1) {
    return 0;
  }
  if (dir == NULL) {
    dir = su_tmpdir("recover-fuzz");
    atexit(remove_dir);
  }
  clear_dir();
  npairs = 0;
  outstanding = calls = fail_at = 0;
  su_faults_reset(0);
  tern_store_file_options_default(&o);
  o.segment_size = seg_sizes[take(&in) & 3];
  o.compact_garbage = 0;
  so = o;
  so.strict = 1;

  for (int f = 0; f < MAX_FILES && in.p < in.end; ++f) {
    uint8_t kind = take(&in) & 7;
    uint32_t number = number_of(take(&in));
    char name[64];
    const char *path;
    snprintf(name, sizeof(name), "%06lu.log%s", (unsigned long)number,
             kind == 6 ? ".tmp" : kind == 7 ? ".corrupt" : "");
    path = su_path(dir, name);
    if (access(path, F_OK) == 0 || faccessat(AT_FDCWD, path, F_OK,
                                             AT_SYMLINK_NOFOLLOW) == 0) {
      continue; /* one file a name */
    }
    switch (kind) {
    case 0:
      prev_size = make_segment(&in, path, number, prev_size);
      break;
    case 1:
    case 6:
    case 7:
      make_raw(&in, path);
      break;
    case 2:
      REQUIRE(mkdir(path, 0755) == 0);
      break;
    case 3:
      REQUIRE(mkfifo(path, 0644) == 0);
      break;
    case 4:
      REQUIRE(symlink("nowhere", path) == 0);
      break;
    case 5:
      if (prev_path[0] == '\0' || symlink(prev_path, path) != 0) {
        continue;
      }
      break;
    }
    snprintf(prev_path, sizeof(prev_path), "%s", name);
  }

  /* Strict: refuses, changing nothing, or opens. */
  memset(&strict_l, 0, sizeof(strict_l));
  rv = open_store(&s, dir, &so, &mem);
  REQUIRE(rv == 0 || rv == TERN_ERR_STORE);
  strict_ok = rv == 0;
  if (strict_ok) {
    load(s, &strict_l);
    tern_store_file_close(s);
  }
  REQUIRE(su_f.fds == 0 && su_f.dirs == 0);

  /* Not strict: opens, and serves only what was written. */
  rv = open_store(&s, dir, &o, &mem);
  if (rv != 0) {
    fprintf(stderr, "recover_fuzz: open: %s\n", tern_store_file_error(NULL));
  }
  REQUIRE(rv == 0);
  load(s, &a);
  for (size_t i = 0; i < a.m.n; ++i) {
    REQUIRE(!a.m.e[i].live || known(&a.m.e[i]));
  }
  if (strict_ok) {
    REQUIRE(su_equal(&a.m, &strict_l.m, NULL, 0));
  }
  r.op = TERN_STORE_SET;
  r.key = (const uint8_t *)"new";
  r.keylen = 3;
  r.value = (const uint8_t *)"value";
  r.valuelen = 5;
  rv = tern_store_file_methods()->append(s, 0, &r, 1, 1);
  if (rv != 0) {
    /* Only a real segment numbered 4294967295 that is full leaves no
       number for the next one. */
    REQUIRE(rv == TERN_ERR_STORE &&
            strstr(tern_store_file_error(s), "exhausted") != NULL);
  } else {
    su_apply(&a.m, &r);
  }
  tern_store_file_close(s);

  /* The repair is stable. */
  REQUIRE(open_store(&s, dir, &o, &mem) == 0);
  load(s, &b);
  REQUIRE(su_equal(&a.m, &b.m, NULL, 0));
  tern_store_file_close(s);
  REQUIRE(open_store(&s, dir, &o, &mem) == 0);
  load(s, &c);
  REQUIRE(su_equal(&b.m, &c.m, NULL, 0));
  tern_store_file_close(s);

  REQUIRE(su_f.fds == 0 && su_f.dirs == 0);
  REQUIRE(outstanding == 0);
  su_model_free(&strict_l.m);
  su_model_free(&a.m);
  su_model_free(&b.m);
  su_model_free(&c.m);
  return 0;
}
