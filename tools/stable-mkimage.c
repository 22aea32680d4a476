/*
 * stable-mkimage: make a checksummed image (or a sidecar manifest) from a
 * file or block device, and print its root digest.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "stable/mkimage.h"
#include "stable/stable.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: stable-mkimage [OPTIONS] SOURCE IMAGE\n"
"       stable-mkimage --sidecar [OPTIONS] SOURCE MANIFEST\n"
"Make a checksummed image from SOURCE (a file or block device) and print\n"
"its root digest (8 hex digits) on stdout.\n"
"\n"
"  -s, --sidecar          leave SOURCE as it is; write a manifest naming it\n"
"  -b, --block-size=N     block size, a power of two from 512 to 1M (4096)\n"
"  -z, --compress         compress with zlib in extents (inline only)\n"
"  -e, --extent-size=N    bytes of data per compressed extent (64K, or 8 blocks)\n"
"  -p, --parity=N         one XOR parity block per N data blocks\n"
"  -q, --quiet            no progress bar\n"
"  -h, --help             this help\n"
"  -V, --version          the version\n"
"\n"
"Exit status: 0 success, 2 usage or I/O error.\n");
}

struct bar {
	int shown;
	int last;
};

/* Progress on stderr, only for a terminal and a source of 64 MiB or more. */
static void show_progress(void *arg, uint64_t done, uint64_t total)
{
	struct bar *b = arg;
	int pct = total ? (int)(done * 100 / total) : 100;

	if (pct == b->last)
		return;
	b->last = pct;
	b->shown = 1;
	fprintf(stderr, "\r[%-50.*s] %3d%%", pct / 2,
		"##################################################", pct);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sidecar", no_argument, NULL, 's' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "compress", no_argument, NULL, 'z' },
		{ "extent-size", required_argument, NULL, 'e' },
		{ "parity", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct stable_mkimage_options o = { 0 };
	struct bar bar = { 0, -1 };
	char err[1024];
	uint32_t digest;
	uint64_t v;
	int c, quiet = 0;

	cli_prog = "stable-mkimage";
	while ((c = getopt_long(argc, argv, "sb:ze:p:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o.sidecar = 1; break;
		case 'z': o.compress = 1; break;
		case 'q': quiet = 1; break;
		case 'b':
			if (cli_parse_size(optarg, &v) || v > UINT32_MAX)
				cli_die("--block-size: '%s' is not a size", optarg);
			o.block_size = (uint32_t)v;
			if (!o.block_size)
				cli_die("--block-size: 0 is not a block size");
			break;
		case 'e':
			if (cli_parse_size(optarg, &v) || v == 0 || v > UINT32_MAX)
				cli_die("--extent-size: '%s' is not a size", optarg);
			o.extent_size = (uint32_t)v;
			break;
		case 'p':
			if (cli_parse_size(optarg, &v) || v < 2 || v > UINT32_MAX)
				cli_die("--parity: '%s' is not a group size of 2 or more", optarg);
			o.parity_group = (uint32_t)v;
			break;
		default: cli_other_option(c, usage);
		}
	}
	cli_operands(argc, optind, 2, 2, usage);
	if (!quiet && isatty(STDERR_FILENO)) {
		o.progress = show_progress;
		o.progress_arg = &bar;
	}
	if (stable_mkimage(argv[optind], argv[optind + 1], &o, &digest, err,
			   sizeof(err))) {
		if (bar.shown)
			fputc('\n', stderr);
		cli_die("%s", err);
	}
	if (bar.shown)
		fputc('\n', stderr);
	printf("%08x\n", digest);
	return EXIT_OK;
}
