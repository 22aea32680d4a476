/*
 * crc32c (Castagnoli), the checksum of every block, table and header.
 * ISA-L picks the fastest implementation for this CPU at run time; zlib's
 * crc32 is a different polynomial and cannot be used here.
 */
#include <limits.h>
#include <isa-l/crc.h>

#include "stable/stable.h"

/* Same convention as zlib's crc32(): pass the previous result to chain. */
uint32_t stable_crc32c(uint32_t crc, const void *buf, size_t len)
{
	unsigned char *p = (unsigned char *)buf;	/* ISA-L is not const-correct */
	uint32_t raw = ~crc;

	while (len > 0) {
		int n = len > (size_t)INT_MAX ? INT_MAX & ~63 : (int)len;

		raw = crc32_iscsi(p, n, raw);
		p += n;
		len -= (size_t)n;
	}
	return ~raw;
}
