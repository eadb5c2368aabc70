/* The C tests' tiny harness: CHECK counts a condition and reports a failing one with its file
 * and line; CHECK_STR compares strings exactly and CHECK_MSG requires a substring (error
 * messages), each showing both texts; check_fail reports a failure with its own message;
 * check_exit prints the tally and gives the exit status.
 * Include it once per test program. */
#ifndef NNC_TESTS_CHECK_H
#define NNC_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond)                                                                \
	do {                                                                           \
		checks++;                                                                  \
		if (!(cond)) {                                                             \
			failures++;                                                            \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                          \
	} while (0)

/* Reports a failure described printf-style (for checks that compute their own message). */
static inline void __attribute__((format(printf, 1, 2)))
check_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

#define CHECK_STR(got, want) check_str_at((got), (want), __FILE__, __LINE__)
#define CHECK_MSG(msg, want) check_msg_at((msg), (want), __FILE__, __LINE__)

static inline void
check_str_at(const char *got, const char *want, const char *file, int line)
{
	checks++;
	if (strcmp(got, want) != 0) {
		failures++;
		fprintf(stderr, "%s:%d: got  \"%s\"\n%*swant \"%s\"\n", file, line, got, (int)strlen(file) + 8, "", want);
	}
}

static inline void
check_msg_at(const char *msg, const char *want, const char *file, int line)
{
	checks++;
	if (!strstr(msg, want)) {
		failures++;
		fprintf(stderr, "%s:%d: message\n    %s\nlacks\n    %s\n", file, line, msg, want);
	}
}

static inline int
check_exit(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, checks, failures);
	return failures != 0;
}

#endif
