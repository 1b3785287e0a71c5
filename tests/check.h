/* A minimal assertion kit for hai's C tests: failures are counted and printed with their
 * location; a test's exit status is nonzero when any check failed. */
#ifndef HAI_CHECK_H
#define HAI_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hai.h"

static int check_failures;
static int check_count;

/* Every check is an expression that yields whether it passed. */
static int check_report(int ok, const char *file, int line, const char *expr, const char *fmt, ...) {
    check_count++;
    if (ok) return 1;
    check_failures++;
    fprintf(stderr, "%s:%d: CHECK failed: %s", file, line, expr);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    return 0;
}

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, #cond, NULL)
#define CHECK_MSG(cond, ...) check_report(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)
#define CHECK_EQ_INT(a, b) check_eq_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_NEAR(a, b, tol) check_near((double)(a), (double)(b), (double)(tol), __FILE__, __LINE__, #a, #b)

static inline int check_eq_int(long long a, long long b, const char *file, int line, const char *ea, const char *eb) {
    return check_report(a == b, file, line, "equal", "%s = %lld, %s = %lld", ea, a, eb, b);
}

static inline int check_near(double a, double b, double tol, const char *file, int line, const char *ea, const char *eb) {
    return check_report(fabs(a - b) <= tol, file, line, "near", "%s = %.9g, %s = %.9g (tol %g)", ea, a, eb, b, tol);
}

/* Prints the summary and returns the process exit status. */
static inline int check_done(const char *name) {
    if (check_count == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* The shared data directory from argv[1]; exits the test (failing) when it is missing. */
static inline const char *check_shared_dir(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SHARED_DIR (the ../shared data directory)\n", argv[0]);
        exit(1);
    }
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/reference/summary.json", argv[1]);
    FILE *f = fopen(probe, "rb");
    if (!f) {
        fprintf(stderr, "FAIL: shared test data not found: %s\n", probe);
        exit(1);
    }
    fclose(f);
    return argv[1];
}

#endif
