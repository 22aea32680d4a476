/*
 * Description: 1000 randomly mutated images (header fields, raw header
 * bytes, checksum table, compression index, truncation), with and
 * without their checksums fixed up afterwards so that mutations reach
 * the deeper checks. Every open either fails with a message, or succeeds
 * and then every read returns either the source's exact bytes or a clean
 * error: never a wrong byte, never a crash (run under ASan and UBSan).
 */
#include <errno.h>
#include <string.h>

#include "format.h"
#include "tap.h"
#include "testutil.h"

#define LEN 200000
#define ROUNDS 1000

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	return tu_rnd(&rng);
}

struct blob {
	uint8_t *p;
	size_t len;
};

static struct blob slurp(const char *path)
{
	struct blob b = { NULL, (size_t)tu_file_size(path) };
	FILE *f = fopen(path, "rb");

	b.p = malloc(b.len + 1);
	if (!f || fread(b.p, 1, b.len, f) != b.len)
		b.len = 0;
	if (f)
		fclose(f);
	return b;
}

/* Recomputes the table, index and header checksums of a mutated image. */
static void fixup(uint8_t *p, size_t len)
{
	uint64_t toff = stable_le64(p + 88), tlen = stable_le64(p + 96);
	uint64_t ioff = stable_le64(p + 112), ilen = stable_le64(p + 120);

	if (toff <= len && tlen <= len - toff)
		stable_put_le32(p + 104, stable_crc32c(0, p + toff, tlen));
	if (ioff <= len && ilen <= len - ioff)
		stable_put_le32(p + 108, stable_crc32c(0, p + ioff, ilen));
	stable_put_le32(p + 252, stable_crc32c(0, p, 252));
}

static void mutate(uint8_t *p, size_t *len, int kind)
{
	static const int fields64[] = { 24, 48, 56, 64, 80, 88, 96, 112, 120, 128, 144 };
	static const int fields32[] = { 16, 20, 72, 76, 136 };
	uint64_t toff = stable_le64(p + 88), tlen = stable_le64(p + 96);
	uint64_t ioff = stable_le64(p + 112), ilen = stable_le64(p + 120);
	static const uint64_t extremes[] = { 0, 1, 511, 4096, 65536, UINT32_MAX,
					     UINT64_MAX, UINT64_MAX - 4095, 1ull << 63 };

	switch (kind) {
	case 0:	/* a 64-bit field: random, extreme or nudged */
	{
		int f = fields64[rnd() % 11];
		uint64_t v = stable_le64(p + f);

		v = rnd() % 3 == 0 ? extremes[rnd() % 9] : rnd() % 2 ? v + (rnd() % 9) - 4 : rnd();
		stable_put_le64(p + f, v);
		break;
	}
	case 1:	/* a 32-bit field */
	{
		int f = fields32[rnd() % 5];

		stable_put_le32(p + f, rnd() % 2 ? (uint32_t)extremes[rnd() % 9]
						 : stable_le32(p + f) ^ (uint32_t)(1u << (rnd() % 32)));
		break;
	}
	case 2:	/* raw bytes of the header */
		for (int i = 0, n = 1 + (int)(rnd() % 4); i < n; i++)
			p[rnd() % STABLE_HDR_SIZE] ^= (uint8_t)(1u << (rnd() % 8));
		break;
	case 3:	/* the checksum table */
		if (tlen)
			p[toff + rnd() % tlen] ^= (uint8_t)(1u << (rnd() % 8));
		break;
	case 4:	/* the compression index, or the data if there is none */
		if (ilen)
			p[ioff + rnd() % ilen] ^= (uint8_t)(1u << (rnd() % 8));
		else
			p[4096 + rnd() % (*len - 4096)] ^= 0x40;
		break;
	default: /* truncation anywhere */
		*len = rnd() % *len;
		break;
	}
}

int main(void)
{
	static uint8_t src[LEN], out[LEN];
	static const struct stable_mkimage_options kinds[] = {
		{ .block_size = 4096, .compress = 1, .parity_group = 4, .extent_size = 16384 },
		{ .block_size = 512, .parity_group = 3 },
		{ .block_size = 4096, .sidecar = 1, .parity_group = 2 },
	};
	int opened = 0, refused = 0, wrong = 0, silent = 0, good_reads = 0, eio = 0;
	char err[1024];
	uint32_t digest;

	tu_tmpdir();
	tu_fill(src, LEN, 7);
	tu_write_file(tu_path("src"), src, LEN);
	for (int k = 0; k < 3; k++) {
		char name[16];

		snprintf(name, sizeof(name), "img%d", k);
		if (!ok(stable_mkimage(tu_path("src"), tu_path(name), &kinds[k], &digest,
				       err, sizeof(err)) == 0, "make image kind %d", k))
			diag("%s", err);
	}

	for (int r = 0; r < ROUNDS; r++) {
		struct stable_image *img;
		struct stable_reader *rd;
		char name[16];
		struct blob b;
		int ret;

		snprintf(name, sizeof(name), "img%d", r % 3);
		b = slurp(tu_path(name));
		mutate(b.p, &b.len, (int)(rnd() % 6));
		if (rnd() % 2 && b.len >= STABLE_HDR_SIZE)
			fixup(b.p, b.len);
		tu_write_file(tu_path("work"), b.p, b.len);
		free(b.p);

		err[0] = 0;
		ret = stable_image_open(&img, tu_path("work"), NULL, err, sizeof(err));
		if (ret) {
			refused++;
			if (!err[0])
				silent++;
			continue;
		}
		opened++;
		if (stable_reader_new(&rd, img, NULL, err, sizeof(err)) == 0) {
			struct stable_image_info info;

			stable_image_get_info(img, &info);
			memset(out, 0, sizeof(out));
			/* A mutated length may pass its own checks; the bytes may not. */
			if (info.data_length > LEN) {
				wrong++;
				diag("round %d: opened with data_length %llu", r,
				     (unsigned long long)info.data_length);
			} else {
				ret = info.data_length ?
				      tu_read_all(rd, 0, info.data_length, out) : 0;
				if (ret == 0 && memcmp(out, src, info.data_length) != 0) {
					wrong++;
					diag("round %d: wrong bytes delivered", r);
				} else if (ret == 0) {
					good_reads++;
				} else if (ret == -EIO) {
					eio++;
				} else {
					wrong++;
					diag("round %d: read failed with %d: %s", r, ret,
					     stable_errmsg(rd));
				}
			}
			stable_reader_free(rd);
		}
		stable_image_close(img);
	}
	diag("%d refused at open, %d opened (%d read fully, %d failed with EIO)",
	     refused, opened, good_reads, eio);
	is(silent, 0, "every refused open has a message");
	is(wrong, 0, "no opened image delivers a wrong byte");
	ok(refused > ROUNDS / 4 && opened > 0, "mutations reach both outcomes (%d, %d)",
	   refused, opened);
	tu_cleanup();
	return tap_done();
}
