/*
 * A tiny TAP producer for the C tests, run by prove. Every failed check
 * prints the file, the line, the case and the values it compared.
 */
#ifndef STABLE_TAP_H
#define STABLE_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

static inline void tap_vok(int cond, const char *file, int line,
			   const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static inline void tap_vok(int cond, const char *file, int line,
			   const char *fmt, va_list ap)
{
	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	vprintf(fmt, ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
}

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vok(cond, file, line, fmt, ap);
	va_end(ap);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* is(got, want, "case"): integers, with both values in the message on failure. */
#define is(got, want, ...) do {						\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (!ok(g_ == w_, __VA_ARGS__))					\
		printf("#   got %lld (0x%llx), want %lld (0x%llx)\n",	\
		       g_, (unsigned long long)g_, w_, (unsigned long long)w_); \
} while (0)

#define diag(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

/* One skipped check, counted as passed by prove. */
#define skip(...) do { printf("ok %d # SKIP ", ++tap_n); printf(__VA_ARGS__); \
	printf("\n"); } while (0)

/* Skips the whole program (prove counts it as skipped). */
#define skip_all(...) do { printf("1..0 # SKIP "); printf(__VA_ARGS__); \
	printf("\n"); exit(0); } while (0)

#endif
