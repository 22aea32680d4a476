/*
 * stable-verify: check every stored block of an image (stable_scrub) and
 * say which are bad, where they are and what they cover; with --repair,
 * rewrite the ones parity can rebuild and check the whole image again.
 * The report goes to stdout (text, or one JSON object); errors that stop
 * the check go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "json.h"
#include "stable/scrub.h"
#include "stable/stable.h"

#define U(x) ((unsigned long long)(x))

static void usage(FILE *f)
{
	fprintf(f,
"Usage: stable-verify [OPTIONS] IMAGE\n"
"Check every data and parity block of IMAGE (an image or a sidecar\n"
"manifest) against its checksum, and inflate every compressed extent.\n"
"Each bad block is reported with its number, the bytes it covers and\n"
"where it lives; then a summary line with the throughput.\n"
"\n"
"  -r, --repair           rewrite bad blocks rebuilt from parity, then\n"
"                         check the whole image again\n"
"  -d, --digest=HEX       refuse the image unless its root digest is HEX\n"
"  -j, --json             print the report as one JSON object\n"
"  -q, --quiet            no summary line (bad blocks are still reported)\n"
"  -h, --help             this help\n"
"  -V, --version          the version\n"
"\n"
"Exit status: 0 clean (or every bad block repaired), 1 corruption found\n"
"(a bad block, header, table or index, or a wrong digest), 2 usage or\n"
"I/O error.\n");
}

struct verify {
	const char *path;
	struct stable_image_info info;
	int repair, json, quiet;
	struct stable_bad_block *bad;	/* kept for --json */
	size_t nbad, capbad;
	int nomem;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "data block 5 (bytes 20480-24575, file offset 24576)" and the like. */
static void describe(const struct verify *v, const struct stable_bad_block *x,
		     char *out, size_t len)
{
	uint64_t last = x->length ? x->offset + x->length - 1 : x->offset;

	if (x->kind == STABLE_BLOCK_PARITY)
		snprintf(out, len, "parity block of group %llu (covers data bytes %llu-%llu, file offset %llu)",
			 U(x->block), U(x->offset), U(last), U(x->file_offset));
	else if (v->info.extent_size)
		snprintf(out, len, "data block %llu (in the extent of bytes %llu-%llu, file offset %llu)",
			 U(x->block), U(x->offset), U(last), U(x->file_offset));
	else
		snprintf(out, len, "data block %llu (bytes %llu-%llu, file offset %llu)",
			 U(x->block), U(x->offset), U(last), U(x->file_offset));
}

static void print_bad(const struct verify *v, const struct stable_bad_block *x)
{
	char where[256], crcs[64] = "";

	describe(v, x, where, sizeof(where));
	if (x->expected_crc != x->found_crc)
		snprintf(crcs, sizeof(crcs), " [crc32c expected 0x%08x, found 0x%08x]",
			 x->expected_crc, x->found_crc);
	if (!v->repair)
		printf("%s: %s: %s%s\n", v->path, where, x->why, crcs);
	else if (x->repaired)
		printf("%s: %s: %s%s: repaired\n", v->path, where, x->why, crcs);
	else
		printf("%s: %s: not repaired: %s%s\n", v->path, where, x->why, crcs);
}

static void on_bad(void *arg, const struct stable_bad_block *x)
{
	struct verify *v = arg;

	if (!v->json) {
		print_bad(v, x);
		return;
	}
	if (v->nbad == v->capbad) {
		size_t cap = v->capbad ? v->capbad * 2 : 32;
		struct stable_bad_block *p = realloc(v->bad, cap * sizeof(*p));

		if (!p) {
			v->nomem = 1;
			return;
		}
		v->bad = p;
		v->capbad = cap;
	}
	/* why points at static strings in libstable: safe to keep. */
	v->bad[v->nbad++] = *x;
}

static const char *status_word(int ret, const struct stable_scrub_report *r)
{
	if (ret)
		return "corrupt";
	return r->repaired ? "repaired" : "clean";
}

static void print_summary(const struct verify *v, int ret,
			  const struct stable_scrub_report *r, double secs)
{
	double mib = (double)r->bytes_checked / (1024.0 * 1024.0);

	printf("%s: %s: %llu blocks, %llu bytes checked in %.3f s (%.1f MiB/s); %llu bad, %llu repaired",
	       v->path, status_word(ret, r), U(r->blocks_checked), U(r->bytes_checked),
	       secs, secs > 0 ? mib / secs : 0.0, U(r->bad_blocks), U(r->repaired));
	if (r->bad_extents)
		printf(", %llu extents that do not inflate", U(r->bad_extents));
	putchar('\n');
}

static void print_json(const struct verify *v, int ret,
		       const struct stable_scrub_report *r, double secs, int rechecked)
{
	char digest[9];
	int first = 1;

	snprintf(digest, sizeof(digest), "%08x", v->info.root_digest);
	fputc('{', stdout);
	json_kv_str(stdout, &first, 2, "image", v->path);
	json_kv_str(stdout, &first, 2, "root_digest", digest);
	json_kv_str(stdout, &first, 2, "status", status_word(ret, r));
	json_kv_u64(stdout, &first, 2, "blocks_checked", r->blocks_checked);
	json_kv_u64(stdout, &first, 2, "bytes_checked", r->bytes_checked);
	json_kv_u64(stdout, &first, 2, "bad_blocks", r->bad_blocks);
	json_kv_u64(stdout, &first, 2, "repaired", r->repaired);
	json_kv_u64(stdout, &first, 2, "bad_extents", r->bad_extents);
	json_kv_bool(stdout, &first, 2, "rechecked_after_repair", rechecked);
	json_key(stdout, &first, 2, "seconds");
	printf("%.6f", secs);
	json_key(stdout, &first, 2, "bytes_per_second");
	printf("%.0f", secs > 0 ? (double)r->bytes_checked / secs : 0.0);
	json_key(stdout, &first, 2, "bad");
	fputc('[', stdout);
	for (size_t i = 0; i < v->nbad; i++) {
		const struct stable_bad_block *x = &v->bad[i];
		int f = 1;

		fputs(i ? ",\n    {" : "\n    {", stdout);
		json_kv_str(stdout, &f, 6, "kind",
			    x->kind == STABLE_BLOCK_PARITY ? "parity" : "data");
		json_kv_u64(stdout, &f, 6, x->kind == STABLE_BLOCK_PARITY ? "group" : "block",
			    x->block);
		json_kv_u64(stdout, &f, 6, "file_offset", x->file_offset);
		json_kv_u64(stdout, &f, 6, "offset", x->offset);
		json_kv_u64(stdout, &f, 6, "length", x->length);
		json_key(stdout, &f, 6, "expected_crc");
		printf("\"%08x\"", x->expected_crc);
		json_key(stdout, &f, 6, "found_crc");
		printf("\"%08x\"", x->found_crc);
		json_kv_str(stdout, &f, 6, "why", x->why);
		json_kv_bool(stdout, &f, 6, "repaired", x->repaired);
		fputs("\n    }", stdout);
	}
	fputs(v->nbad ? "\n  ]" : "]", stdout);
	fputs("\n}\n", stdout);
}

/* Opening checks the header, table and index: a failure there is corruption. */
static int open_status(int ret)
{
	return ret == -EINVAL || ret == -EBADMSG ? EXIT_CORRUPT : EXIT_USAGE;
}

/* With --json a script still gets an object when the check cannot run. */
static void print_json_failure(const char *path, int status, const char *msg)
{
	int first = 1;

	fputc('{', stdout);
	json_kv_str(stdout, &first, 2, "image", path);
	json_kv_str(stdout, &first, 2, "status", status == EXIT_CORRUPT ? "corrupt" : "error");
	json_kv_str(stdout, &first, 2, "error", msg);
	fputs("\n}\n", stdout);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ "digest", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct stable_open_options oo = { 0 };
	struct stable_scrub_report rep, again;
	struct verify v = { 0 };
	struct stable_image *img;
	char err[1024];
	int c, ret, rechecked = 0;
	double t0, secs;

	cli_prog = "stable-verify";
	while ((c = getopt_long(argc, argv, "rd:jqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': v.repair = 1; break;
		case 'j': v.json = 1; break;
		case 'q': v.quiet = 1; break;
		case 'd':
			if (stable_digest_parse(optarg, &oo.expected_digest))
				cli_die("--digest: '%s' is not 8 hex digits", optarg);
			oo.flags |= STABLE_OPEN_EXPECT_DIGEST;
			break;
		default: cli_other_option(c, usage);
		}
	}
	cli_operands(argc, optind, 1, 1, usage);
	v.path = argv[optind];
	if (v.repair)
		oo.flags |= STABLE_OPEN_WRITABLE;
	ret = stable_image_open(&img, v.path, &oo, err, sizeof(err));
	if (ret) {
		cli_error("%s", err);
		if (v.json)
			print_json_failure(v.path, open_status(ret), err);
		return open_status(ret);
	}
	stable_image_get_info(img, &v.info);

	t0 = now();
	ret = stable_scrub(img, v.repair ? STABLE_SCRUB_REPAIR : 0, on_bad, &v,
			   &rep, err, sizeof(err));
	secs = now() - t0;
	if (ret == 0 && rep.repaired) {
		/* Trust the repair only once a fresh pass finds nothing. */
		rechecked = 1;
		ret = stable_scrub(img, 0, NULL, NULL, &again, err, sizeof(err));
		if (ret == 1)
			cli_error("%s: still corrupt after repair: %llu bad blocks, %llu bad extents",
				  v.path, U(again.bad_blocks), U(again.bad_extents));
	}
	stable_image_close(img);
	if (ret < 0) {
		cli_error("%s", err);
		if (v.json)
			print_json_failure(v.path, EXIT_USAGE, err);
		free(v.bad);
		return EXIT_USAGE;
	}
	if (v.nomem) {
		cli_error("%s: no memory for the report", v.path);
		free(v.bad);
		return EXIT_USAGE;
	}
	if (v.json)
		print_json(&v, ret, &rep, secs, rechecked);
	else if (!v.quiet)
		print_summary(&v, ret, &rep, secs);
	free(v.bad);
	if (fflush(stdout) != 0) {
		cli_error("stdout: %s", strerror(errno));
		return EXIT_USAGE;
	}
	return ret ? EXIT_CORRUPT : EXIT_OK;
}
