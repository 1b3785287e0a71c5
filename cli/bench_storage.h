#ifndef HAI_CLI_BENCH_STORAGE_H
#define HAI_CLI_BENCH_STORAGE_H

#include "cli.h"

/* GB/s of 512 KiB O_DIRECT reads at random places of the file, four in flight (0: cannot tell). */
double bench_storage_gbps(const char *path);

#endif
