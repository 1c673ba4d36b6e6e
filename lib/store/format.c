/* Segment headers, record framing and the segment scanner. */
#include "store/format.h"

#include <errno.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/mem.h"

static const uint8_t seg_magic[8] = {'T', 'E', 'R', 'N', 'L', 'O', 'G', 0};

void seg_header_encode(uint8_t *out, const seg_header *h) {
  memcpy(out, seg_magic, 8);
  put_le32(out + 8, h->version);
  put_le32(out + 12, h->flags);
  put_le64(out + 16, h->number);
  put_le32(out + 24, h->salt);
  put_le32(out + 28, 0);
  put_le64(out + 32, h->prev_size);
  put_le32(out + 40, 0);
  put_le32(out + 44, crc32c(0, out, 44));
}

static int header_copy_ok(const uint8_t *p) {
  uint32_t version = get_le32(p + 8);
  return memcmp(p, seg_magic, 8) == 0 && version >= SEG_VERSION_MIN &&
         version <= SEG_VERSION &&
         (get_le32(p + 12) & ~SEG_FLAGS_KNOWN) == 0 &&
         get_le32(p + 28) == 0 && get_le32(p + 40) == 0 && /* reserved */
         get_le32(p + 44) == crc32c(0, p, 44);
}

int seg_header_decode(const uint8_t *p, size_t len, seg_header *h) {
  for (size_t copy = 0; copy < 2; ++copy) {
    const uint8_t *c = p + copy * SEG_HEADER_SIZE;
    if (len >= (copy + 1) * SEG_HEADER_SIZE && header_copy_ok(c)) {
      h->version = get_le32(c + 8);
      h->flags = get_le32(c + 12);
      h->number = get_le64(c + 16);
      h->salt = get_le32(c + 24);
      h->prev_size = get_le64(c + 32);
      return 1;
    }
  }
  return 0;
}

/* body_crc is a record's CRC: bytes 0..3 and 8..10 of its head, then the
   key and value (contiguous when |value| follows |key|). */
static uint32_t body_crc(const uint8_t *head, uint32_t salt,
                         const uint8_t *key, size_t keylen,
                         const uint8_t *value, size_t valuelen) {
  uint32_t crc = crc32c(salt, head, 4);
  crc = crc32c(crc, head + 8, 3);
  if (valuelen == 0 || value == key + keylen) {
    return crc32c(crc, key, keylen + valuelen);
  }
  crc = crc32c(crc, key, keylen);
  return crc32c(crc, value, valuelen);
}

static uint32_t head_check(const uint8_t *head, uint32_t salt) {
  return crc32c(salt ^ REC_HEAD_SEED, head, REC_HEAD_V1);
}

void rec_encode_head(uint8_t *out, uint32_t salt, int op, const uint8_t *key,
                     size_t keylen, const uint8_t *value, size_t valuelen) {
  put_le32(out, (uint32_t)(REC_HEAD - 8 + keylen + valuelen));
  out[8] = (uint8_t)op;
  put_le16(out + 9, (uint32_t)keylen);
  put_le32(out + 4, body_crc(out, salt, key, keylen, value, valuelen));
  put_le32(out + 11, head_check(out, salt));
}

void rec_encode_head_v1(uint8_t *out, uint32_t salt, int op,
                        const uint8_t *key, size_t keylen,
                        const uint8_t *value, size_t valuelen) {
  put_le32(out, (uint32_t)(REC_HEAD_V1 - 8 + keylen + valuelen));
  out[8] = (uint8_t)op;
  put_le16(out + 9, (uint32_t)keylen);
  put_le32(out + 4, body_crc(out, salt, key, keylen, value, valuelen));
}

size_t rec_plausible(const uint8_t *p, uint32_t version) {
  uint32_t len = get_le32(p);
  uint32_t keylen = get_le16(p + 9);
  uint32_t extra = (uint32_t)rec_head_size(version) - 8;
  int op = p[8];

  if (op != REC_OP_SET && op != REC_OP_DEL) {
    return 0;
  }
  if (keylen == 0 || keylen > TERN_STORE_MAX_KEY || len < extra + keylen) {
    return 0;
  }
  if (op == REC_OP_DEL ? len != extra + keylen
                       : len - extra - keylen > REC_MAX_VALUE) {
    return 0;
  }
  return (size_t)8 + len;
}

int rec_head_ok(const uint8_t *p, uint32_t salt, uint32_t version) {
  return version < 2 || get_le32(p + 11) == head_check(p, salt);
}

int rec_decode(const uint8_t *p, size_t avail, uint32_t salt,
               uint32_t version, rec *r, size_t *need) {
  size_t head = rec_head_size(version), size, keylen;

  if (avail < head) {
    *need = head;
    return REC_MORE;
  }
  size = rec_plausible(p, version);
  if (size == 0 || !rec_head_ok(p, salt, version)) {
    return REC_BAD;
  }
  if (avail < size) {
    *need = size;
    return REC_MORE;
  }
  keylen = get_le16(p + 9);
  if (body_crc(p, salt, p + head, keylen, p + head + keylen,
               size - head - keylen) != get_le32(p + 4)) {
    return REC_BAD;
  }
  r->op = p[8];
  r->keylen = keylen;
  r->key = p + head;
  r->value = p + head + keylen;
  r->valuelen = size - head - keylen;
  r->size = size;
  return REC_OK;
}

/* ---- the scanner -------------------------------------------------------- */

/* The buffer holds the segment's bytes [base, base + fill).  Good records
   wait in |pending| (pointing into the buffer) until the buffer must move
   or the batch is full. */
typedef struct scan_state {
  scan_buf *b;
  const scan_source *src;
  uint64_t size; /* shrinks if the source ends early */
  uint64_t base;
  size_t fill;
  int read_errno;
  scan_visit visit;
  void *ctx;
  rec pending[SCAN_BATCH];
  size_t npending;
  uint32_t version;
  size_t head; /* rec_head_size(version) */
  uint64_t crc_bytes;
} scan_state;

static int flush(scan_state *s) {
  size_t n = s->npending;
  s->npending = 0;
  return n > 0 ? s->visit(s->ctx, s->pending, n) : 0;
}

static int grow(scan_state *s, size_t want, size_t keep_from, size_t keep) {
  size_t cap = s->b->cap ? s->b->cap : SCAN_BUF_DEFAULT;
  uint8_t *p;
  while (cap < want) {
    cap *= 2;
  }
  p = mem_malloc(s->b->mem, cap);
  if (p == NULL) {
    return TERN_ERR_NOMEM;
  }
  if (keep > 0) {
    memcpy(p, s->b->p + keep_from, keep);
  }
  mem_free(s->b->mem, s->b->p);
  s->b->p = p;
  s->b->cap = cap;
  return 0;
}

/*
 * ensure makes the buffer hold the bytes at |pos| (not before the current
 * window) and at least min(|need|, bytes left) of them.  Sets |*p| and
 * |*avail| (the bytes buffered from |pos|).
 */
static int ensure(scan_state *s, uint64_t pos, size_t need,
                  const uint8_t **p, size_t *avail) {
  size_t off, have, want;
  uint64_t left = s->size - pos;

  if (pos > s->base + s->fill) { /* never: the scan moves forward */
    s->base = pos;
    s->fill = 0;
  }
  off = (size_t)(pos - s->base);
  have = s->fill - off;
  want = left < need ? (size_t)left : need;
  if (have < want || s->b->p == NULL) {
    int rv = flush(s);
    if (rv != 0) {
      return rv;
    }
    if (want > s->b->cap || s->b->p == NULL) {
      rv = grow(s, want, off, have);
      if (rv != 0) {
        return rv;
      }
    } else if (off > 0) {
      memmove(s->b->p, s->b->p + off, have);
    }
    s->base = pos;
    s->fill = have;
    off = 0;
    while (s->fill < want) {
      uint64_t end = s->base + s->fill;
      size_t room = s->b->cap - s->fill;
      tern_ssize n;
      if (room > s->size - end) {
        room = (size_t)(s->size - end);
      }
      n = s->src->read_at(s->src->ctx, s->b->p + s->fill, room, end);
      if (n < 0) {
        s->read_errno = errno != 0 ? errno : EIO;
        return TERN_ERR_STORE;
      }
      if (n == 0) { /* the segment is shorter than it said */
        s->size = end;
        break;
      }
      s->fill += (size_t)n;
    }
    have = s->fill;
  }
  *p = s->b->p + off;
  *avail = have;
  return 0;
}

/* resync finds the first offset from |from| where a good record starts, or
   returns the segment's size in |*found|.  Each offset costs a look at the
   head and (version 2) an 11-byte head check; only a head that passes has
   its whole claimed length read and checked. */
static int resync(scan_state *s, uint64_t from, uint32_t salt,
                  uint64_t *found) {
  for (uint64_t q = from; q + s->head <= s->size; ++q) {
    const uint8_t *p;
    size_t avail, size, need;
    rec r;
    int rv = ensure(s, q, s->head, &p, &avail);
    if (rv != 0) {
      return rv;
    }
    if (avail < s->head) {
      break;
    }
    size = rec_plausible(p, s->version);
    if (size == 0 || size > s->size - q) {
      continue;
    }
    if (s->version >= 2) {
      s->crc_bytes += REC_HEAD_V1;
      if (!rec_head_ok(p, salt, s->version)) {
        continue;
      }
    }
    rv = ensure(s, q, size, &p, &avail);
    if (rv != 0) {
      return rv;
    }
    s->crc_bytes += size - 4;
    if (rec_decode(p, avail, salt, s->version, &r, &need) == REC_OK) {
      *found = q;
      return 0;
    }
  }
  *found = s->size;
  return 0;
}

int scan_segment(scan_buf *b, const scan_source *src, uint64_t start,
                 uint32_t salt, uint32_t version, scan_visit visit,
                 void *ctx, scan_result *res) {
  scan_state s;
  uint64_t pos = start;
  int rv = 0;

  memset(res, 0, sizeof(*res));
  res->first_damage = UINT64_MAX;
  res->tail = UINT64_MAX;
  s.b = b;
  s.src = src;
  s.size = src->size;
  s.base = start;
  s.fill = 0;
  s.read_errno = 0;
  s.visit = visit;
  s.ctx = ctx;
  s.npending = 0;
  s.version = version;
  s.head = rec_head_size(version);
  s.crc_bytes = 0;

  while (pos < s.size) {
    const uint8_t *p;
    size_t avail, need = s.head;
    rec r;
    int st;
    uint64_t next;

    rv = ensure(&s, pos, need, &p, &avail);
    if (rv != 0) {
      break;
    }
    st = rec_decode(p, avail, salt, version, &r, &need);
    if (st == REC_MORE && avail < need && need <= s.size - pos) {
      rv = ensure(&s, pos, need, &p, &avail);
      if (rv != 0) {
        break;
      }
      st = rec_decode(p, avail, salt, version, &r, &need);
    }
    if (st == REC_OK) {
      s.crc_bytes += r.size - 4;
      ++res->records;
      r.off = pos;
      s.pending[s.npending++] = r;
      if (s.npending == SCAN_BATCH && (rv = flush(&s)) != 0) {
        break;
      }
      pos += r.size;
      continue;
    }
    rv = resync(&s, pos + 1, salt, &next);
    if (rv != 0) {
      break;
    }
    if (next >= s.size) {
      res->tail = pos;
      break;
    }
    if (res->damaged == 0) {
      res->first_damage = pos;
    }
    ++res->damaged;
    res->damaged_bytes += next - pos;
    pos = next;
  }
  if (rv == 0) {
    rv = flush(&s);
  }
  if (res->tail == UINT64_MAX) {
    res->tail = s.size;
  }
  res->read_errno = s.read_errno;
  res->crc_bytes = s.crc_bytes;
  return rv;
}

void scan_buf_free(scan_buf *b) {
  mem_free(b->mem, b->p);
  b->p = NULL;
  b->cap = 0;
}
