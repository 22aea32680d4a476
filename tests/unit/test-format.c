/*
 * Description: the header decoder rejects every malformed, inconsistent
 * or out-of-file field with a message naming that field and its value,
 * and accepts the valid header it is derived from. The compression index
 * checker likewise.
 */
#include <errno.h>
#include <string.h>

#include "format.h"
#include "tap.h"
#include "stable/stable.h"

#define FILE_SIZE 16396u

static void base(struct stable_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->version = 1;
	h->block_size = 4096;
	h->data_length = 10000;
	h->data_offset = 4096;
	h->data_blocks = 3;
	h->table_offset = 16384;
	h->table_length = 12;
}

/* Encodes h, decodes it, and checks the error names `want`. */
static void expect(const struct stable_hdr *h, uint64_t size, const char *want,
		   const char *name)
{
	uint8_t raw[STABLE_HDR_SIZE];
	struct stable_hdr out;
	char err[512] = "";
	int ret;

	stable_hdr_encode(h, raw);
	ret = stable_hdr_decode(&out, raw, size, err, sizeof(err));
	if (!want) {
		if (!ok(ret == 0, "%s: accepted", name))
			diag("error: %s", err);
		return;
	}
	if (!ok(ret < 0 && strstr(err, want), "%s: rejected naming \"%s\"", name, want))
		diag("ret %d, message: \"%s\"", ret, err);
}

static void raw_cases(void)
{
	uint8_t raw[STABLE_HDR_SIZE];
	struct stable_hdr h, out;
	char err[512];

	base(&h);
	stable_hdr_encode(&h, raw);
	raw[0] ^= 1;
	ok(stable_hdr_decode(&out, raw, FILE_SIZE, err, sizeof(err)) == -EINVAL &&
	   strstr(err, "bad magic"), "wrong magic: %s", err);
	stable_hdr_encode(&h, raw);
	raw[30] ^= 0x10;
	ok(stable_hdr_decode(&out, raw, FILE_SIZE, err, sizeof(err)) == -EINVAL &&
	   strstr(err, "header checksum mismatch"), "flipped bit in data_length: %s", err);
	stable_hdr_encode(&h, raw);
	raw[200] = 1;
	stable_put_le32(raw + 252, stable_crc32c(0, raw, 252));
	ok(stable_hdr_decode(&out, raw, FILE_SIZE, err, sizeof(err)) == -EINVAL &&
	   strstr(err, "reserved byte 200"), "reserved byte set: %s", err);
	stable_hdr_encode(&h, raw);
	stable_put_le32(raw + 12, 128);
	stable_put_le32(raw + 252, stable_crc32c(0, raw, 252));
	ok(stable_hdr_decode(&out, raw, FILE_SIZE, err, sizeof(err)) == -EINVAL &&
	   strstr(err, "header_size 128"), "header_size 128: %s", err);
}

static void field_cases(void)
{
	struct stable_hdr h;

	base(&h);
	expect(&h, FILE_SIZE, NULL, "valid inline header");
	base(&h); h.version = 2;
	expect(&h, FILE_SIZE, "unsupported format version 2", "version 2");
	base(&h); h.block_size = 1000;
	expect(&h, FILE_SIZE, "block_size 1000", "block size not a power of two");
	base(&h); h.block_size = 256;
	expect(&h, FILE_SIZE, "block_size 256", "block size too small");
	base(&h); h.block_size = 2u << 20;
	expect(&h, FILE_SIZE, "block_size 2097152", "block size too large");
	base(&h); h.flags = 1u << 9;
	expect(&h, FILE_SIZE, "unknown bits 0x200", "unknown flag");
	base(&h); h.flags = STABLE_HF_SIDECAR | STABLE_HF_COMPRESSED;
	expect(&h, FILE_SIZE, "sidecar image cannot be compressed", "sidecar + compressed");
	base(&h); h.data_blocks = 4;
	expect(&h, FILE_SIZE, "data_blocks 4", "data_blocks too many");
	base(&h); h.data_length = UINT64_MAX;
	expect(&h, FILE_SIZE, "data_blocks 3", "huge data_length");
	base(&h); h.table_length = 16;
	expect(&h, FILE_SIZE, "table_length 16", "table_length wrong");
	base(&h); h.table_offset = UINT64_MAX - 4;
	expect(&h, FILE_SIZE, "overflows", "table offset + length overflows");
	base(&h);
	expect(&h, FILE_SIZE - 1, "checksum table [16384, 16396) extends past the end",
	       "file truncated inside the table");
	base(&h);
	expect(&h, 8000, "data region [4096, 16384) extends past the end", "file truncated inside the data");
	base(&h); h.table_offset = 8192;
	expect(&h, FILE_SIZE, "overlaps", "table overlapping the data");
	base(&h); h.data_offset = 4096 + 512;
	expect(&h, FILE_SIZE, "data_offset 4608", "unaligned data");
	base(&h); h.data_offset = 0;
	expect(&h, FILE_SIZE, "data_offset 0", "data over the header");
	base(&h); h.extent_size = 65536;
	expect(&h, FILE_SIZE, "extent_size 65536 set", "extent size without the flag");
	base(&h); h.path_length = 5;
	expect(&h, FILE_SIZE, "sidecar fields set", "path in an inline image");

	base(&h); h.flags = STABLE_HF_PARITY; h.parity_group = 1;
	expect(&h, FILE_SIZE, "parity_group 1", "parity group of 1");
	base(&h); h.flags = STABLE_HF_PARITY; h.parity_group = 2; h.parity_blocks = 1;
	h.parity_offset = 16384; h.table_offset = 20480; h.table_length = 16;
	expect(&h, 20496, "parity_blocks 1", "parity_blocks wrong");
	h.parity_blocks = 2; h.table_offset = 24576; h.table_length = 20;
	expect(&h, 24596, NULL, "valid header with parity");
	h.parity_offset = 16385;
	expect(&h, 24596, "parity_offset 16385", "unaligned parity");
	base(&h); h.parity_group = 4;
	expect(&h, FILE_SIZE, "parity fields set", "parity group without the flag");

	base(&h); h.flags = STABLE_HF_SIDECAR; h.data_offset = 0;
	h.path_offset = 4096; h.path_length = 10; h.data_file_size = 10000;
	h.table_offset = 4106;
	expect(&h, 4118, NULL, "valid sidecar header");
	h.path_length = 0;
	expect(&h, 4118, "path_length 0", "sidecar without a path");
	h.path_length = 10; h.data_file_size = 9999;
	expect(&h, 4118, "data_file_size 9999", "sidecar data file smaller than data");
	h.data_file_size = 10000; h.data_offset = 512;
	expect(&h, 4118, "data_offset 512", "sidecar data offset");
}

static void index_cases(void)
{
	struct stable_hdr h;
	struct stable_index_entry e[2] = {
		{ .first_block = 0, .stored_bytes = 5000 },
		{ .first_block = 2, .stored_bytes = 100 },
	};
	uint8_t idx[32];
	char err[512];

	base(&h);
	h.flags = STABLE_HF_COMPRESSED;
	h.extent_size = 65536;
	h.data_length = 70000;
	h.data_blocks = 3;
	h.index_length = 32;
	stable_index_put(idx, 0, &e[0]);
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) == 0, "valid index accepted");
	e[1].first_block = 3;
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "extent 1: first_block 3, expected 2"), "gap in index: %s", err);
	e[1].first_block = 2; e[1].stored_bytes = 4465;
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "stored_bytes 4465 is not from 1 to 4464"),
	   "extent stored larger than its data: %s", err);
	e[1].stored_bytes = 0;
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "stored_bytes 0"), "empty extent: %s", err);
	e[1].stored_bytes = 100; e[1].flags = 4;
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "unknown flags 0x4"), "unknown extent flag: %s", err);
	/* a ZERO extent stores nothing and takes no blocks */
	e[1].flags = STABLE_XF_ZERO;
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "a ZERO extent stores nothing, not 100 bytes"),
	   "a ZERO extent with stored bytes: %s", err);
	e[1].stored_bytes = 0;
	stable_index_put(idx, 1, &e[1]);
	h.data_blocks = 2;
	err[0] = '\0';
	ok(stable_index_check(&h, idx, err, sizeof(err)) == 0,
	   "a ZERO extent of no blocks accepted: %s", err);
	e[1].flags = STABLE_XF_ZERO | STABLE_XF_RAW;
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "flagged both RAW and ZERO"), "RAW and ZERO at once: %s", err);
	h.data_blocks = 3;
	e[1].stored_bytes = 100;
	e[1].flags = STABLE_XF_RAW;
	stable_index_put(idx, 1, &e[1]);
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "raw extent of 100 bytes, expected 4464"), "short raw extent: %s", err);
	e[1].flags = 0;
	stable_index_put(idx, 1, &e[1]);
	h.data_blocks = 4;
	ok(stable_index_check(&h, idx, err, sizeof(err)) < 0 &&
	   strstr(err, "covers 3 blocks, data_blocks is 4"), "index short of data_blocks: %s", err);
}

int main(void)
{
	raw_cases();
	field_cases();
	index_cases();
	return tap_done();
}
