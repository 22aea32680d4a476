/*
 * What every stable-* command shares: the program name in messages, the
 * exit codes, --help/--version, and parsing sizes like "4096" or "64K".
 */
#ifndef STABLE_TOOLS_CLI_H
#define STABLE_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

/* Exit codes (stable-verify: 1 means corruption found). */
#define EXIT_OK		0
#define EXIT_CORRUPT	1
#define EXIT_USAGE	2

extern const char *cli_prog;

/* Prints "prog: message" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_error, then exit(EXIT_USAGE). */
void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void cli_version(void) __attribute__((noreturn));

/*
 * The end of every getopt switch: -h prints usage on stdout and exits 0,
 * -V the version; anything else is a usage error (usage on stderr, exit 2).
 */
void cli_other_option(int c, void (*usage)(FILE *)) __attribute__((noreturn));
/* Between min and max operands after the options, or a usage error. */
void cli_operands(int argc, int first, int min, int max, void (*usage)(FILE *));

/* Parses a byte count with an optional K, M or G suffix (powers of 1024). */
int cli_parse_size(const char *text, uint64_t *out);
#endif
