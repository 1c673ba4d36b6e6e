/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * the file store's records and segment headers.
 *
 * crc32c(0, p, n) is the standard CRC-32C of n bytes ("123456789" gives
 * 0xe3069283).  Passing a previous result extends it:
 * crc32c(crc32c(0, a, na), b, nb) == crc32c(0, a || b, na + nb).  Any
 * other starting value works as a seed.
 *
 * crc32c uses the SSE4.2 crc32 instruction when the CPU has it (checked at
 * run time) and the portable slicing-by-8 code otherwise; both give the
 * same results and both are tested.
 */
#ifndef TERN_BASE_CRC32C_H
#define TERN_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* crc32c_portable is the table-driven code, on every CPU. */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);

/* crc32c_hw_available says whether crc32c_hw may be called. */
int crc32c_hw_available(void);

/* crc32c_hw is the instruction-based code; only when available. */
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);

#endif
