/*
 * The block buffering and padding SHA-1 and SHA-256 share (the
 * Merkle-Damgard construction of FIPS 180-4 with 64-byte blocks and a
 * 64-bit big-endian bit count): each hash supplies only its chaining
 * state and its compression function.
 */
#ifndef TERN_WEB_MD_H
#define TERN_WEB_MD_H

#include <stddef.h>
#include <stdint.h>

/* web_md_compress folds one 64-byte block into the state |h|. */
typedef void (*web_md_compress)(uint32_t *h, const uint8_t *block);

typedef struct web_md {
  uint64_t total;     /* bytes hashed so far                */
  uint8_t block[64];  /* a partial block                    */
  size_t blocklen;
} web_md;

/* web_md_update hashes |len| bytes at |data| (NULL when 0) into |h|. */
void web_md_update(web_md *m, uint32_t *h, web_md_compress f,
                   const void *data, size_t len);
/* web_md_final pads, compresses the last block(s) and writes the |nwords|
   words of |h| big-endian to |out|. */
void web_md_final(web_md *m, uint32_t *h, web_md_compress f, size_t nwords,
                  uint8_t *out);

#endif
