/*
 * The file store under a hostile or careless world: a LOCK file deleted
 * under an open store, files named like segments that are not segments
 * (FIFOs, directories, dangling symlinks, an empty file with the highest
 * number), strict mode and a damaged last record, and recovery after damage
 * in a log whose payloads are full of plausible record heads (the work it
 * does is counted, not timed).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "store/format.h"
#include "store_util.h"
#include "tap.h"

static const tern_store_methods *M;

static tern_store_file_options opts(size_t segment_size, int strict) {
  tern_store_file_options o;
  tern_store_file_options_default(&o);
  o.segment_size = segment_size;
  o.compact_garbage = 0;
  o.strict = (uint32_t)strict;
  return o;
}

/* put appends one SET (synced) to the store and the model. */
static int put(tern_store_file *s, su_model *m, const char *key,
               const uint8_t *value, size_t len) {
  tern_store_record r;
  int rv;
  r.op = TERN_STORE_SET;
  r.key = (const uint8_t *)key;
  r.keylen = strlen(key);
  r.value = value;
  r.valuelen = len;
  rv = M->append(s, 0, &r, 1, 1);
  if (rv == 0) {
    su_apply(m, &r);
  }
  return rv;
}

/* fill appends |n| records of 40 bytes, keys "r<i>". */
static int fill(tern_store_file *s, su_model *m, int from, int n) {
  char key[32];
  uint8_t value[40];
  for (int i = from; i < from + n; ++i) {
    snprintf(key, sizeof(key), "r%04d", i);
    memset(value, 'a' + i % 26, sizeof(value));
    if (put(s, m, key, value, sizeof(value)) != 0) {
      return -1;
    }
  }
  return 0;
}

static int matches(tern_store_file *s, const su_model *m) {
  su_loaded l;
  char why[400] = "";
  int ok;
  memset(&l, 0, sizeof(l));
  ok = su_load(s, &l) == 0 && l.duplicates == 0 &&
       su_equal(&l.m, m, why, sizeof(why));
  if (!ok) {
    tap_diag("load differs: %s (dups %zu)", why, l.duplicates);
  }
  su_model_free(&l.m);
  return ok;
}

static void flip_byte(const char *path, size_t off, uint8_t mask) {
  size_t len;
  uint8_t *p = su_read_file(path, &len);
  if (p == NULL || off >= len) {
    su_die("flip_byte");
  }
  p[off] ^= mask;
  su_write_file(path, p, len);
  free(p);
}

/* ---- the lock ----------------------------------------------------------- */

static void test_lock_unlinked(void) {
  char *dir = su_tmpdir("hardlock");
  tern_store_file_options o = opts(1 << 20, 0);
  tern_store_file *a, *b = NULL;
  su_model m;
  int rv;

  memset(&m, 0, sizeof(m));
  a = su_open(dir, &o);
  fill(a, &m, 0, 3);
  CHECK(unlink(su_path(dir, "LOCK")) == 0, "LOCK deleted under the store");
  rv = tern_store_file_open(&b, dir, &o, NULL);
  CHECK_INT(rv, TERN_ERR_STATE, "a second open still fails: the directory "
                                "itself is locked");
  CHECK(strstr(tern_store_file_error(NULL), "locked") != NULL,
        "and says so: %s", tern_store_file_error(NULL));
  if (rv == 0) {
    tern_store_file_close(b);
  }
  tern_store_file_close(a);
  b = su_open(dir, &o);
  CHECK(matches(b, &m), "after close the next open gets in, with the data");
  tern_store_file_close(b);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

/* ---- what is named like a segment but is none ---------------------------- */

static uint64_t last_segment(const char *dir) {
  uint64_t best = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0) {
      uint64_t v = strtoull(e->d_name, NULL, 10);
      best = v > best ? v : best;
    }
  }
  if (d != NULL) {
    closedir(d);
  }
  return best;
}

static void test_not_segments(void) {
  char *dir = su_tmpdir("hardjunk");
  tern_store_file_options o = opts(1024, 0);
  tern_store_file *s;
  tern_store_file_stats st;
  char name[64];
  su_model m;
  uint64_t last;

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  fill(s, &m, 0, 30);
  tern_store_file_close(s);
  last = last_segment(dir);
  /* The next three numbers, and a temporary name, are taken by things
     that are not segments. */
  snprintf(name, sizeof(name), "%06llu.log", (unsigned long long)last + 1);
  CHECK(mkfifo(su_path(dir, name), 0644) == 0, "a FIFO named %s", name);
  snprintf(name, sizeof(name), "%06llu.log", (unsigned long long)last + 2);
  CHECK(mkdir(su_path(dir, name), 0755) == 0, "a directory named %s", name);
  snprintf(name, sizeof(name), "%06llu.log", (unsigned long long)last + 3);
  CHECK(symlink("nowhere", su_path(dir, name)) == 0,
        "a dangling symlink named %s", name);
  snprintf(name, sizeof(name), "%06llu.log.tmp",
           (unsigned long long)last + 4);
  CHECK(mkdir(su_path(dir, name), 0755) == 0, "a directory named %s", name);

  alarm(60); /* an open that blocks on the FIFO fails the test */
  s = NULL;
  CHECK(tern_store_file_open(&s, dir, &o, NULL) == 0, "open succeeds: %s",
        tern_store_file_error(NULL));
  alarm(0);
  if (s == NULL) {
    goto out;
  }
  st = su_stats(s);
  CHECK(st.skipped_files == 4 && st.skipped == 0,
        "the four are counted as skipped files (%llu), not as damage",
        (unsigned long long)st.skipped_files);
  CHECK(strstr(tern_store_file_error(s), "skipped") != NULL &&
            strstr(tern_store_file_error(s), "not a regular file") != NULL,
        "the open says what it skipped: %s", tern_store_file_error(s));
  CHECK(matches(s, &m), "the store loads");
  CHECK_INT(fill(s, &m, 100, 40), 0,
            "appends roll new segments past the taken numbers");
  CHECK(last_segment(dir) > last + 4, "new segments went past them");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_stats(s).skipped_files == 4,
        "a reopen loads everything and skips the same four");
  tern_store_file_close(s);
  o.strict = 1;
  s = su_open(dir, &o);
  CHECK(matches(s, &m), "strict opens too: skipped files hold no records");
  tern_store_file_close(s);
out:
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

static void test_highest_number(void) {
  char *dir = su_tmpdir("hardmax");
  tern_store_file_options o = opts(1024, 0);
  tern_store_file *s;
  su_model m;
  int rv;

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  fill(s, &m, 0, 10);
  tern_store_file_close(s);
  su_write_file(su_path(dir, "4294967295.log"), (const uint8_t *)"", 0);
  s = su_open(dir, &o);
  CHECK(su_stats(s).skipped == 1, "the empty 4294967295.log is damage");
  rv = fill(s, &m, 10, 30);
  CHECK(rv == 0, "appends still work: %s", tern_store_file_error(s));
  CHECK(su_file_size(su_path(dir, "4294967295.log.corrupt")) == 0 &&
            su_file_size(su_path(dir, "4294967295.log")) < 0,
        "it was moved aside as 4294967295.log.corrupt");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_stats(s).skipped == 0,
        "a reopen loads everything, with no damage left");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

/* ---- strict mode and the last record ------------------------------------ */

static void test_strict_last_record(void) {
  char *dir = su_tmpdir("hardstrict");
  tern_store_file_options o = opts(1 << 20, 1);
  tern_store_file *s;
  tern_store_file_stats st;
  su_model m;
  uint8_t value[40];
  char kept[64];
  off_t size;
  size_t rsize = rec_size(5, sizeof(value)), len;
  uint8_t *tail, *orig;

  memset(&m, 0, sizeof(m));
  s = su_open(dir, &o);
  fill(s, &m, 0, 5);
  tern_store_file_close(s);
  size = su_file_size(su_path(dir, "000001.log"));
  orig = su_read_file(su_path(dir, "000001.log"), &len);
  /* A bit flips in the value of the last record, which was synced. */
  flip_byte(su_path(dir, "000001.log"), (size_t)size - 3, 0x20);
  s = su_open(dir, &o);
  st = su_stats(s);
  su_del(&m, (const uint8_t *)"r0004", 5);
  CHECK(st.truncated == rsize && matches(s, &m),
        "strict opens, cuts the record (%llu bytes) and serves the rest",
        (unsigned long long)st.truncated);
  snprintf(kept, sizeof(kept), "000001.log.%llu.tail",
           (unsigned long long)((uint64_t)size - rsize));
  tail = su_read_file(su_path(dir, kept), &len);
  CHECK(tail != NULL && len == rsize &&
            memcmp(tail, orig + size - (off_t)rsize, rsize - 3) == 0 &&
            tail[rsize - 3] == (orig[size - 3] ^ 0x20),
        "the damaged bytes are kept in %s", kept);
  CHECK(strstr(tern_store_file_error(s), kept) != NULL,
        "and the open says so: %s", tern_store_file_error(s));
  free(tail);
  free(orig);
  memset(value, 'z', sizeof(value));
  CHECK_INT(put(s, &m, "after", value, sizeof(value)), 0,
            "appends go on after the cut");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_stats(s).truncated == 0, "a reopen is clean");
  tern_store_file_close(s);

  /* Not strict: the tail is truncated, nothing is kept. */
  size = su_file_size(su_path(dir, "000001.log"));
  flip_byte(su_path(dir, "000001.log"), (size_t)size - 3, 0x20);
  o.strict = 0;
  s = su_open(dir, &o);
  su_del(&m, (const uint8_t *)"after", 5);
  CHECK(su_stats(s).truncated == rsize && matches(s, &m) &&
            su_count_files(dir, ".tail") == 1,
        "non-strict truncates without keeping a copy");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

/* ---- recovery work after damage in a hostile log ------------------------ */

static int count_recs(void *ctx, const rec *recs, size_t n) {
  (void)recs;
  *(size_t *)ctx += n;
  return 0;
}

static void test_hostile_recovery(void) {
  size_t len, hoff = 0, hsize = 0, found = 0;
  uint32_t salt = 0x5a17c0de;
  uint8_t *img =
      su_hostile_segment(SEG_VERSION, 20, 64 * 1024, salt, &len, &hoff, &hsize);
  char *dir = su_tmpdir("hardhostile");
  tern_store_file_options o = opts(1 << 20, 0);
  tern_store_file *s;
  tern_store_file_stats st;
  scan_result res;
  scan_source src;
  scan_buf sb;
  su_mem_src m = {img, len};

  memset(&sb, 0, sizeof(sb));
  sb.mem = mem_default();
  src.read_at = su_mem_read_at;
  src.ctx = &m;
  src.size = len;
  CHECK_INT(scan_segment(&sb, &src, SEG_DATA_START, salt, SEG_VERSION,
                         count_recs, &found, &res), 0, "the scan runs");
  CHECK(found == 40 && res.damaged == 1 && res.damaged_bytes == hsize &&
            res.first_damage == hoff,
        "it skips the damaged record (%zu bytes) and finds the 40 others "
        "(%zu)", hsize, found);
  tap_diag("segment of %zu bytes: %llu bytes run through CRC-32C", len,
           (unsigned long long)res.crc_bytes);
  CHECK(res.crc_bytes <= 16 * (uint64_t)len,
        "the work is linear: %llu CRC bytes for a %zu-byte segment "
        "(at most 16 a byte)", (unsigned long long)res.crc_bytes, len);
  scan_buf_free(&sb);

  /* Through open: the same. */
  su_write_file(su_path(dir, "000001.log"), img, len);
  s = su_open(dir, &o);
  st = su_stats(s);
  CHECK(st.live == 40 && st.skipped == 1 && st.skipped_bytes == hsize,
        "open serves the 40 good records and skips the damaged one");
  tern_store_file_close(s);
  free(img);
  su_rmtree(dir);
  free(dir);
}

/* A segment of format version 1 (before the head check) is still read,
   its torn tail cut; appends go to a new segment of the current format. */
static void test_old_format(void) {
  char *dir = su_tmpdir("hardv1");
  tern_store_file_options o = opts(1 << 20, 0);
  uint8_t img[4096];
  size_t off = SEG_DATA_START;
  uint32_t salt = 0x0ddba11;
  tern_store_file *s;
  seg_header h;
  su_model m;
  uint8_t value[20];

  memset(&m, 0, sizeof(m));
  memset(img, 0, sizeof(img));
  h.version = 1;
  h.flags = 0;
  h.number = 1;
  h.salt = salt;
  h.prev_size = 0;
  seg_header_encode(img, &h);
  memcpy(img + SEG_HEADER_SIZE, img, SEG_HEADER_SIZE);
  for (int i = 0; i < 10; ++i) {
    char key[8];
    tern_store_record r;
    snprintf(key, sizeof(key), "old%d", i);
    memset(value, 'A' + i, sizeof(value));
    memcpy(img + off + REC_HEAD_V1, key, 4);
    memcpy(img + off + REC_HEAD_V1 + 4, value, sizeof(value));
    rec_encode_head_v1(img + off, salt, REC_OP_SET, img + off + REC_HEAD_V1,
                       4, img + off + REC_HEAD_V1 + 4, sizeof(value));
    off += REC_HEAD_V1 + 4 + sizeof(value);
    r.op = TERN_STORE_SET;
    r.key = (const uint8_t *)key;
    r.keylen = 4;
    r.value = value;
    r.valuelen = sizeof(value);
    su_apply(&m, &r);
  }
  /* A torn tail: half a record. */
  memcpy(img + off, img + SEG_DATA_START, 15);
  su_write_file(su_path(dir, "000001.log"), img, off + 15);
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_stats(s).truncated == 15 &&
            su_stats(s).skipped == 0,
        "a version 1 segment loads, its torn tail cut");
  CHECK_INT(fill(s, &m, 0, 5), 0, "appends work");
  CHECK(su_file_size(su_path(dir, "000001.log")) == (off_t)off &&
            su_file_size(su_path(dir, "000002.log")) > 0,
        "they went to a new segment, not the old one");
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_stats(s).skipped == 0, "a reopen loads both");
  CHECK(M->compact(s) == 0 && su_stats(s).garbage_bytes == 0,
        "compaction: %s", tern_store_file_error(s));
  tern_store_file_close(s);
  s = su_open(dir, &o);
  CHECK(matches(s, &m) && su_stats(s).segments == 1 &&
            su_stats(s).garbage_bytes == 0,
        "compaction rewrote everything into one segment, with no garbage");
  tern_store_file_close(s);
  su_model_free(&m);
  su_rmtree(dir);
  free(dir);
}

int main(void) {
  M = tern_store_file_methods();
  signal(SIGPIPE, SIG_IGN);
  test_lock_unlinked();
  test_not_segments();
  test_highest_number();
  test_strict_last_record();
  test_hostile_recovery();
  test_old_format();
  return tap_done();
}
