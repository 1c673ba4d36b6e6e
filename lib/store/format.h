/*
 * The on-disk format of the file store, and the decoder that recovery,
 * load and compaction share (the part the fuzz target drives).
 *
 * A store is a directory holding a lock file LOCK and segment files named
 * by their number in decimal, at least six digits: 000001.log, 000002.log,
 * ...  Replaying the segments in increasing number order, record by record,
 * gives the state.  Every integer is little-endian.
 *
 * Segment file:
 *   0   header (48 bytes)
 *   48  the same header again, so that one damaged copy loses nothing
 *   96  records, back to back
 *
 * Segment header:
 *   0   8  magic "TERNLOG\0"
 *   8   4  format version: 2 (1: segments written by earlier builds of
 *          the store, read as ever, never appended to; see below)
 *   12  4  flags: SEG_BASE = this segment was written by compaction and
 *          replaces every segment with a lower number
 *   16  8  segment number (equal to the number in the file name)
 *   24  4  salt: a random seed for the CRCs of this segment's records
 *   28  4  zero
 *   32  8  the final size of the segment started before this one (the
 *          next lower number that is a segment), when this one was
 *          started after it; 0 if none (recovery reports a shorter or
 *          missing predecessor as damage)
 *   40  4  zero
 *   44  4  CRC-32C of bytes 0..43
 *
 * Record (version 2):
 *   0   4  length: the bytes after the CRC (7 + keylen + valuelen)
 *   4   4  CRC-32C seeded with the segment's salt, over bytes 0..3, 8..10
 *          and the key and value
 *   8   1  op: 1 SET, 2 DEL (a DEL has no value)
 *   9   2  keylen, 1..TERN_STORE_MAX_KEY
 *   11  4  head check: CRC-32C seeded with the salt xor REC_HEAD_SEED,
 *          over bytes 0..10
 *   15  keylen bytes of key, then the value (length - 7 - keylen bytes)
 *
 * Record (version 1): the same without the head check: 11 bytes of head,
 * length = 3 + keylen + valuelen, the CRC over bytes 0..3 and 8..end.
 *
 * The salt makes a record that was copied into another record's value
 * (a message whose payload happens to be a store record) fail its CRC
 * when recovery searches for the next good record after damage.
 *
 * The head check keeps that search linear in the segment's size whatever
 * the payloads hold.  Without it, every offset where a plausible head
 * starts costs a CRC over the length that head claims (up to 64 MiB): a
 * value full of plausible heads made one damaged record cost minutes.
 * With it, such an offset costs 11 bytes of CRC; a head that passes by
 * chance (2^-32 for whoever does not know the salt) costs its length.
 * Segments of version 1 are searched as before, without that bound; the
 * store only reads them, starts a new segment for its appends, and the
 * next compaction rewrites their records in version 2.
 */
#ifndef TERN_STORE_FORMAT_H
#define TERN_STORE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

#define SEG_HEADER_SIZE 48
#define SEG_DATA_START 96 /* two header copies */
#define SEG_VERSION 2     /* written */
#define SEG_VERSION_MIN 1 /* still read */
#define SEG_BASE 0x1u
#define SEG_FLAGS_KNOWN 0x1u

#define REC_HEAD 15       /* length, CRC, op, keylen, head check */
#define REC_HEAD_V1 11    /* length, CRC, op, keylen */
#define REC_HEAD_SEED 0x48454144u /* "HEAD": the head check's salt xor */
#define REC_OP_SET 1
#define REC_OP_DEL 2
/* The longest value a record holds, and so the longest record. */
#define REC_MAX_VALUE TERN_STORE_FILE_MAX_VALUE
#define REC_MAX_SIZE (REC_HEAD + TERN_STORE_MAX_KEY + REC_MAX_VALUE)

static inline void put_le16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline void put_le64(uint8_t *p, uint64_t v) {
  put_le32(p, (uint32_t)v);
  put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t get_le16(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static inline uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p) {
  return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ---- segment header ----------------------------------------------------- */

typedef struct seg_header {
  uint32_t version; /* SEG_VERSION when encoding */
  uint32_t flags;
  uint64_t number;
  uint32_t salt;
  uint64_t prev_size;
} seg_header;

/* seg_header_encode writes one copy (SEG_HEADER_SIZE bytes) to |out|. */
void seg_header_encode(uint8_t *out, const seg_header *h);

/*
 * seg_header_decode reads the two copies in the first |len| bytes of a
 * segment.  Returns 1 and fills |h| from the first copy that has the magic,
 * version, known flags and a good CRC, or 0 when neither has (|h|
 * untouched).
 */
int seg_header_decode(const uint8_t *p, size_t len, seg_header *h);

/* ---- records ------------------------------------------------------------ */

typedef struct rec {
  int op; /* REC_OP_SET or REC_OP_DEL */
  const uint8_t *key;
  size_t keylen;
  const uint8_t *value;
  size_t valuelen;
  size_t size;  /* the whole record, REC_HEAD + keylen + valuelen */
  uint64_t off; /* where it starts in its segment (set by the scanner) */
} rec;

/* rec_size is the size of a record as written (version 2). */
static inline size_t rec_size(size_t keylen, size_t valuelen) {
  return REC_HEAD + keylen + valuelen;
}

/* rec_head_size is the head size of the records of a segment version. */
static inline size_t rec_head_size(uint32_t version) {
  return version >= 2 ? REC_HEAD : REC_HEAD_V1;
}

/*
 * rec_encode_head writes the REC_HEAD-byte head of a version 2 record with
 * its CRC and head check, given the key and value it will be followed by.
 * |salt| is the segment's.
 */
void rec_encode_head(uint8_t *out, uint32_t salt, int op, const uint8_t *key,
                     size_t keylen, const uint8_t *value, size_t valuelen);

/* rec_encode_head_v1 writes the 11-byte head of a version 1 record (for
   tests of old segments). */
void rec_encode_head_v1(uint8_t *out, uint32_t salt, int op,
                        const uint8_t *key, size_t keylen,
                        const uint8_t *value, size_t valuelen);

enum { REC_OK = 0, REC_MORE = 1, REC_BAD = 2 };

/*
 * rec_plausible looks at a record head (rec_head_size(|version|) bytes at
 * |p|) without its CRCs and returns the record's size, or 0 when the head
 * cannot start a record (unknown op, key length out of range, DEL with a
 * value, too long).
 */
size_t rec_plausible(const uint8_t *p, uint32_t version);

/* rec_head_ok checks the head check of a version 2 head (always 1 for
   version 1, which has none). */
int rec_head_ok(const uint8_t *p, uint32_t salt, uint32_t version);

/*
 * rec_decode decodes the record at the start of the |avail| bytes at |p|,
 * of a segment of |version| and |salt|.  REC_OK: |r| is filled (pointers
 * into |p|).  REC_MORE: the record may be good but needs |*need| bytes.
 * REC_BAD: no record starts here.
 */
int rec_decode(const uint8_t *p, size_t avail, uint32_t salt,
               uint32_t version, rec *r, size_t *need);

/* ---- scanning a segment ------------------------------------------------- */

/*
 * A scan walks the records of one segment, from SEG_DATA_START to its end,
 * reading through a caller's buffer.  When the bytes at some offset are not
 * a good record (bad CRC, implausible head, or a record cut by the end),
 * it searches forward, byte by byte, for the next offset where a good
 * record starts (a plausible head, then the head check, then the CRC):
 * the bytes in between are a damaged region.  Damage that
 * no good record follows is the tail: it is reported apart, for the caller
 * to truncate (the last segment) or to count as damage (any other).
 */

/* scan_source reads |n| bytes at |off| into |buf|: returns the count read
   (less only at the end of the data) or -1 with errno set. */
typedef struct scan_source {
  tern_ssize (*read_at)(void *ctx, uint8_t *buf, size_t n, uint64_t off);
  void *ctx;
  uint64_t size; /* the segment's size in bytes */
} scan_source;

/* scan_buf is a reusable read buffer; it grows to the longest record. */
typedef struct scan_buf {
  uint8_t *p;
  size_t cap;
  const tern_mem *mem;
} scan_buf;

#define SCAN_BUF_DEFAULT ((size_t)1 << 20)

/* scan_visit gets the good records in order, a few at a time (so that a
   visitor can prefetch what it will look up); their pointers are valid
   until it returns.  Nonzero stops the scan and becomes its result. */
typedef int (*scan_visit)(void *ctx, const rec *recs, size_t n);

#define SCAN_BATCH 32

typedef struct scan_result {
  uint64_t records;       /* good records */
  uint64_t damaged;       /* damaged regions followed by a good record */
  uint64_t damaged_bytes;
  uint64_t first_damage;  /* offset of the first one; UINT64_MAX if none */
  uint64_t tail;          /* where the trailing damage starts; size if
                             none */
  int read_errno;         /* errno of a failed read, else 0 */
  uint64_t crc_bytes;     /* bytes run through CRC-32C: the scan's work */
} scan_result;

/*
 * scan_segment scans |src| from |start|.  Returns 0, the visitor's nonzero
 * result, TERN_ERR_NOMEM (growing |b|) or TERN_ERR_STORE (a read failed:
 * |res->read_errno|).  |res| is filled in every case.
 */
int scan_segment(scan_buf *b, const scan_source *src, uint64_t start,
                 uint32_t salt, uint32_t version, scan_visit visit,
                 void *ctx, scan_result *res);

void scan_buf_free(scan_buf *b);

#endif
