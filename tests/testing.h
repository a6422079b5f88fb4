/*
 * testing.h - the tiny assert header of segloss's unit tests.
 *
 * A test is a `static void name(void)`; RUN(name) runs it and counts it failed when any CHECK in
 * it failed. TESTS_DONE() prints "N passed, N failed" and returns the exit status.
 */
#ifndef SEGLOSS_TESTING_H
#define SEGLOSS_TESTING_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int testing_passed, testing_failed, testing_current_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);             \
            testing_current_failed = 1;                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            testing_current_failed = 1;                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))

/* |got - want| <= rel * max(|want|, floor) */
#define CHECK_CLOSE(got, want, rel, floor_)                                                        \
    CHECK_MSG(fabs((double)(got) - (double)(want)) <= (rel)*fmax(fabs((double)(want)), (floor_)),  \
              "%.17g vs %.17g", (double)(got), (double)(want))

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        testing_current_failed = 0;                                                                \
        fn();                                                                                      \
        if (testing_current_failed) {                                                              \
            testing_failed++;                                                                      \
            printf("FAIL %s\n", #fn);                                                              \
        } else {                                                                                   \
            testing_passed++;                                                                      \
            printf("ok   %s\n", #fn);                                                              \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define TESTS_DONE()                                                                               \
    (printf("%d passed, %d failed\n", testing_passed, testing_failed), testing_failed ? 1 : 0)

#endif
