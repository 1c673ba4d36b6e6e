/*
 * Fuzz target for the file store's record and segment decoder
 * (lib/store/format.c): segment headers, record framing and the scanner
 * that recovery, load and compaction share.
 *
 * The first input byte picks the mode:
 *
 *  even: the rest is a segment file as found on disk.  If its header
 *        decodes, the records are scanned from the data start with its
 *        salt and format version, else from offset 0 with the salt 0, as
 *        version 2 (version 1 if bit 1 of the mode byte is set).  The scan must account
 *        for every byte exactly once (good records, damaged regions and the
 *        tail partition the data), every record must decode again at its
 *        offset and re-encode to the same bytes, and a second scan through
 *        a 16-byte buffer fed by 1..7-byte reads must give exactly the same
 *        records and damage.
 *
 *  odd:  the rest describes records, [op][keylen][vlen lo][vlen hi][key]
 *        [value] each, then after a 0xff byte, damage as [offset (2)]
 *        [xor mask] triples.  The records are encoded into a segment (salt
 *        from the second byte), damaged, and scanned: every record whose
 *        bytes the damage left alone must be found at its offset, unless a
 *        record found by the scan overlaps it (a record hidden in a value
 *        of a damaged one, which only someone who knows the salt can
 *        forge).
 *
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "store/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "store_fuzz: %s:%d: %s\n", __FILE__, __LINE__,       \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

/* ---- a memory source, optionally returning short reads ------------------ */

typedef struct msrc {
  const uint8_t *p;
  size_t len;
  unsigned chop; /* 0: whole reads; else reads of 1..chop bytes */
  unsigned turn;
} msrc;

static tern_ssize msrc_read(void *ctx, uint8_t *buf, size_t n, uint64_t off) {
  msrc *m = ctx;
  if (off >= m->len) {
    return 0;
  }
  if (n > m->len - off) {
    n = (size_t)(m->len - off);
  }
  if (m->chop != 0 && n > 0) {
    size_t k = 1 + (m->turn++ % m->chop);
    if (n > k) {
      n = k;
    }
  }
  memcpy(buf, m->p + off, n);
  return (tern_ssize)n;
}

/* ---- what a scan saw ---------------------------------------------------- */

typedef struct seen {
  const uint8_t *image;
  size_t len;
  uint32_t salt;
  uint32_t version;
  uint64_t offs[4096];
  size_t sizes[4096];
  size_t n;
  uint64_t next; /* the offset after the previous record */
} seen;

static int check_recs(void *ctx, const rec *recs, size_t n) {
  seen *s = ctx;
  for (size_t i = 0; i < n; ++i) {
    const rec *r = &recs[i];
    rec again;
    size_t need = 0;
    uint8_t head[REC_HEAD];
    size_t hs = rec_head_size(s->version);
    REQUIRE(r->off >= s->next);
    REQUIRE(r->off + r->size <= s->len);
    REQUIRE(r->size == hs + r->keylen + r->valuelen);
    REQUIRE(r->op == REC_OP_SET || r->op == REC_OP_DEL);
    REQUIRE(r->op == REC_OP_SET || r->valuelen == 0);
    REQUIRE(r->keylen >= 1 && r->keylen <= TERN_STORE_MAX_KEY);
    REQUIRE(memcmp(r->key, s->image + r->off + hs, r->keylen) == 0);
    REQUIRE(rec_decode(s->image + r->off, s->len - (size_t)r->off, s->salt,
                       s->version, &again, &need) == REC_OK);
    REQUIRE(again.size == r->size);
    if (s->version >= 2) {
      rec_encode_head(head, s->salt, r->op, r->key, r->keylen, r->value,
                      r->valuelen);
    } else {
      rec_encode_head_v1(head, s->salt, r->op, r->key, r->keylen, r->value,
                         r->valuelen);
    }
    REQUIRE(memcmp(head, s->image + r->off, hs) == 0);
    s->next = r->off + r->size;
    if (s->n < 4096) {
      s->offs[s->n] = r->off;
      s->sizes[s->n++] = r->size;
    }
  }
  return 0;
}

static void scan_image(const uint8_t *image, size_t len, uint64_t start,
                       uint32_t salt, uint32_t version, unsigned chop,
                       size_t bufcap, seen *out, scan_result *res) {
  scan_buf b;
  msrc m;
  scan_source src;
  memset(&b, 0, sizeof(b));
  b.mem = mem_default();
  if (bufcap > 0) {
    b.p = malloc(bufcap);
    REQUIRE(b.p != NULL);
    b.cap = bufcap;
  }
  m.p = image;
  m.len = len;
  m.chop = chop;
  m.turn = 0;
  src.read_at = msrc_read;
  src.ctx = &m;
  src.size = len;
  memset(out, 0, sizeof(*out));
  out->image = image;
  out->len = len;
  out->salt = salt;
  out->version = version;
  out->next = start;
  REQUIRE(scan_segment(&b, &src, start, salt, version, check_recs, out,
                       res) == 0);
  scan_buf_free(&b);
}

/* ---- mode: a segment image ---------------------------------------------- */

static void fuzz_image(const uint8_t *data, size_t size, uint8_t mode) {
  seg_header h;
  uint64_t start = 0;
  uint32_t salt = 0;
  uint32_t version = (mode & 2) ? 1 : SEG_VERSION;
  static seen a, b;
  scan_result ra, rb;
  uint64_t covered = 0;

  if (seg_header_decode(data, size, &h)) {
    uint8_t again[SEG_HEADER_SIZE];
    start = SEG_DATA_START;
    salt = h.salt;
    version = h.version;
    seg_header_encode(again, &h);
    REQUIRE(memcmp(again, data, SEG_HEADER_SIZE) == 0 ||
            memcmp(again, data + SEG_HEADER_SIZE, SEG_HEADER_SIZE) == 0);
    if (start > size) {
      start = size;
    }
  }
  scan_image(data, size, start, salt, version, 0, 65536, &a, &ra);
  scan_image(data, size, start, salt, version, 7, 16, &b, &rb);

  REQUIRE(ra.records == a.n || a.n == 4096);
  for (size_t i = 0; i < a.n; ++i) {
    covered += a.sizes[i];
  }
  if (a.n < 4096) {
    REQUIRE(covered + ra.damaged_bytes + (size - ra.tail) == size - start);
  }
  REQUIRE(ra.tail >= start && ra.tail <= size);
  REQUIRE(ra.damaged == 0 || ra.first_damage < ra.tail);
  REQUIRE(ra.records == rb.records && ra.damaged == rb.damaged &&
          ra.damaged_bytes == rb.damaged_bytes && ra.tail == rb.tail &&
          ra.first_damage == rb.first_damage);
  REQUIRE(a.n == b.n);
  for (size_t i = 0; i < a.n; ++i) {
    REQUIRE(a.offs[i] == b.offs[i] && a.sizes[i] == b.sizes[i]);
  }
}

/* ---- mode: records, then damage ----------------------------------------- */

#define MAX_IMAGE 65536
#define MAX_RECS 512

static void fuzz_records(const uint8_t *data, size_t size) {
  static uint8_t image[MAX_IMAGE];
  uint64_t offs[MAX_RECS];
  size_t sizes[MAX_RECS], nrecs = 0, len, i = 1;
  uint8_t changed[MAX_IMAGE / 8];
  seg_header h;
  uint32_t salt;
  static seen got;
  scan_result res;

  if (size < 2) {
    return;
  }
  salt = (uint32_t)data[1] * 0x01000193u;
  h.version = SEG_VERSION;
  h.flags = 0;
  h.number = 1;
  h.salt = salt;
  h.prev_size = 0;
  seg_header_encode(image, &h);
  memcpy(image + SEG_HEADER_SIZE, image, SEG_HEADER_SIZE);
  len = SEG_DATA_START;
  i = 2;
  while (i + 4 <= size && data[i] != 0xff && nrecs < MAX_RECS) {
    int op = (data[i] & 1) ? REC_OP_DEL : REC_OP_SET;
    size_t keylen = 1 + (size_t)data[i + 1] % TERN_STORE_MAX_KEY;
    size_t vlen = op == REC_OP_DEL ? 0 : get_le16(data + i + 2);
    size_t avail = size - (i + 4);
    const uint8_t *key = data + i + 4;
    size_t used;
    if (keylen > avail) {
      keylen = avail;
    }
    if (keylen == 0) {
      break;
    }
    if (vlen > avail - keylen) {
      vlen = avail - keylen;
    }
    used = 4 + keylen + vlen;
    if (len + rec_size(keylen, vlen) > MAX_IMAGE) {
      break;
    }
    rec_encode_head(image + len, salt, op, key, keylen, key + keylen, vlen);
    memcpy(image + len + REC_HEAD, key, keylen + vlen);
    offs[nrecs] = len;
    sizes[nrecs++] = rec_size(keylen, vlen);
    len += rec_size(keylen, vlen);
    i += used;
  }
  memset(changed, 0, sizeof(changed));
  if (i < size && data[i] == 0xff) {
    for (++i; i + 3 <= size; i += 3) {
      size_t at = get_le16(data + i) % len;
      if (data[i + 2] != 0) {
        image[at] ^= data[i + 2];
        changed[at / 8] |= (uint8_t)(1u << (at % 8));
      }
    }
  }

  scan_image(image, len, SEG_DATA_START, salt, SEG_VERSION, 0, 65536, &got,
             &res);
  for (size_t r = 0; r < nrecs; ++r) {
    int touched = 0, found = 0, overlapped = 0;
    for (uint64_t b = offs[r]; b < offs[r] + sizes[r]; ++b) {
      touched |= changed[b / 8] >> (b % 8) & 1;
    }
    if (touched) {
      continue;
    }
    for (size_t k = 0; k < got.n; ++k) {
      if (got.offs[k] == offs[r] && got.sizes[k] == sizes[r]) {
        found = 1;
      } else if (got.offs[k] < offs[r] + sizes[r] &&
                 offs[r] < got.offs[k] + got.sizes[k]) {
        overlapped = 1;
      }
    }
    REQUIRE(found || overlapped);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  if ((data[0] & 1) == 0) {
    fuzz_image(data + 1, size - 1, data[0]);
  } else {
    fuzz_records(data, size);
  }
  return 0;
}
