/*
 * Description: crc32c known answers (the iSCSI polynomial, not zlib's
 * crc32) and that chaining over pieces equals one pass.
 */
#include <string.h>

#include "tap.h"
#include "stable/stable.h"

int main(void)
{
	static uint8_t big[1 << 20];
	const char *s = "123456789";
	uint32_t whole, chained = 0;

	is(stable_crc32c(0, s, 9), 0xE3069283u, "crc32c(\"123456789\")");
	is(stable_crc32c(0, "", 0), 0, "crc32c of nothing is 0");
	is(stable_crc32c(0, "a", 1), 0xC1D04330u, "crc32c(\"a\")");
	memset(big, 0, 32);
	is(stable_crc32c(0, big, 32), 0x8A9136AAu, "crc32c of 32 zero bytes (RFC 3720)");
	memset(big, 0xff, 32);
	is(stable_crc32c(0, big, 32), 0x62A8AB43u, "crc32c of 32 0xff bytes (RFC 3720)");

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + (i >> 9));
	whole = stable_crc32c(0, big, sizeof(big));
	for (size_t off = 0, step = 1; off < sizeof(big); off += step, step = step * 3 + 1) {
		size_t n = step < sizeof(big) - off ? step : sizeof(big) - off;

		chained = stable_crc32c(chained, big + off, n);
	}
	is(chained, whole, "crc32c chained over uneven pieces equals one pass");
	return tap_done();
}
