/* The library's version (include/hai.h's, checked against CMake's project version at configure). */
#include "hai.h"

const char *hai_version(void) { return HAI_VERSION_STRING; }
