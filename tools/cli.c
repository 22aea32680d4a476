/*
 * Shared command-line plumbing for the stable-* tools.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "stable/stable.h"

const char *cli_prog = "stable";

static void vreport(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void vreport(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", cli_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
}

void cli_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	exit(EXIT_USAGE);
}

void cli_version(void)
{
	printf("%s (stable) %s\n", cli_prog, STABLE_VERSION);
	exit(EXIT_OK);
}

void cli_other_option(int c, void (*usage)(FILE *))
{
	if (c == 'V')
		cli_version();
	usage(c == 'h' ? stdout : stderr);
	exit(c == 'h' ? EXIT_OK : EXIT_USAGE);
}

void cli_operands(int argc, int first, int min, int max, void (*usage)(FILE *))
{
	if (argc - first < min || argc - first > max) {
		usage(stderr);
		exit(EXIT_USAGE);
	}
}

int cli_parse_size(const char *text, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (!text || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	default: return -EINVAL;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}
