/*
 * The on-disk format of a checksummed image, version 1 (docs/format.md is
 * the normative description; this header is its C mirror). Only this file
 * and format.c know the byte layout: everything else works on the decoded,
 * validated struct stable_hdr.
 */
#ifndef STABLE_FORMAT_H
#define STABLE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define STABLE_MAGIC		"STBLIMG1"
#define STABLE_FORMAT_VERSION	1
#define STABLE_HDR_SIZE		256	/* bytes covered by the header crc */
#define STABLE_HDR_AREA		4096	/* the header area, rest zero */
#define STABLE_INDEX_ENTRY	16	/* bytes per compression index entry */
#define STABLE_MIN_BLOCK	512
#define STABLE_MAX_BLOCK	(1u << 20)
#define STABLE_MAX_EXTENT	(16u << 20)
#define STABLE_MAX_PATH		4095
#define STABLE_MAX_PARITY_GROUP	1024

/* header flags */
#define STABLE_HF_SIDECAR	(1u << 0)
#define STABLE_HF_COMPRESSED	(1u << 1)
#define STABLE_HF_PARITY	(1u << 2)
#define STABLE_HF_KNOWN		(STABLE_HF_SIDECAR | STABLE_HF_COMPRESSED | STABLE_HF_PARITY)

/* compression index entry flags */
#define STABLE_XF_RAW		(1u << 0)	/* stored uncompressed */
#define STABLE_XF_ZERO		(1u << 1)	/* all zeroes: nothing stored */

struct stable_hdr {
	uint32_t version;
	uint32_t block_size;
	uint32_t flags;
	uint64_t data_length;
	uint8_t uuid[16];
	uint64_t data_offset;	/* of the data region, in the data file */
	uint64_t data_blocks;	/* stored data blocks */
	uint64_t parity_offset;	/* of the parity region, in the header's file */
	uint32_t parity_group;	/* data blocks per parity block, 0 = none */
	uint32_t extent_size;	/* logical bytes per compressed extent, 0 = none */
	uint64_t parity_blocks;
	uint64_t table_offset;
	uint64_t table_length;
	uint32_t table_crc;
	uint32_t index_crc;
	uint64_t index_offset;
	uint64_t index_length;
	uint64_t path_offset;	/* sidecar: the data file's path, in the manifest */
	uint32_t path_length;
	uint64_t data_file_size; /* sidecar: size of the data file when made */
};

struct stable_index_entry {
	uint64_t first_block;	/* relative to the data region */
	uint32_t stored_bytes;
	uint32_t flags;
};

/* Little-endian helpers, unaligned-safe. */
uint32_t stable_le32(const uint8_t *p);
uint64_t stable_le64(const uint8_t *p);
void stable_put_le32(uint8_t *p, uint32_t v);
void stable_put_le64(uint8_t *p, uint64_t v);

/* Encodes hdr into out[STABLE_HDR_SIZE], computing the header crc. */
void stable_hdr_encode(const struct stable_hdr *hdr, uint8_t *out);

/*
 * Decodes and validates a header: every field on its own and against the
 * others, and the region ends against image_size (the size of the file
 * holding the header). Returns 0, or -EINVAL/-EOVERFLOW with a message
 * naming the field and the value in err.
 */
int stable_hdr_decode(struct stable_hdr *hdr, const uint8_t *in,
		      uint64_t image_size, char *err, size_t errlen);

/* Decodes entry e of a raw index. */
void stable_index_get(const uint8_t *index, uint64_t e,
		      struct stable_index_entry *ent);
void stable_index_put(uint8_t *index, uint64_t e,
		      const struct stable_index_entry *ent);

/*
 * Validates a decoded header's compression index: extents contiguous,
 * in order, covering exactly data_blocks. Returns 0 or -EINVAL with the
 * extent and field named in err.
 */
int stable_index_check(const struct stable_hdr *hdr, const uint8_t *index,
		       char *err, size_t errlen);

/* The extent whose stored blocks include block b (index checked). */
uint64_t stable_index_find(const struct stable_hdr *hdr, const uint8_t *index,
			   uint64_t b);

/* Geometry derived from a valid header. */
uint64_t stable_hdr_extents(const struct stable_hdr *hdr);
/* Bytes of stored block b that its checksum covers (see docs/format.md). */
uint32_t stable_block_valid(const struct stable_hdr *hdr, uint64_t b);
/* The root digest: crc32c over the geometry, the table and the index. */
uint32_t stable_root_digest(const struct stable_hdr *hdr, const uint8_t *table,
			    const uint8_t *index);

#endif
