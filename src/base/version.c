/* The library's version (include/hai.h's, checked against CMake's project version at configure)
 * and the monotonic clock its timings use. */
#include <time.h>

#include "hai.h"

const char *hai_version(void) { return HAI_VERSION_STRING; }

double hai_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
