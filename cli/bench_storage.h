#ifndef HAI_CLI_BENCH_STORAGE_H
#define HAI_CLI_BENCH_STORAGE_H

#include "cli.h"

/* GB/s of read_bytes O_DIRECT reads at random places of the file, four in flight, 768 MiB in all
 * (round: another set of places); 0: cannot tell. */
double bench_storage_gbps(const char *path, uint64_t read_bytes, int round);

#endif
