/* hai bench with streamed weights: what the storage gives, measured on the model file itself the
 * way the streamer reads it (O_DIRECT, several reads in flight), so that tokens/s can be set
 * against storage bandwidth / bytes read a token in the same run. */
#include "bench_storage.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define READERS 4
#define READ_BYTES (512u << 10)
#define READS_EACH 96

typedef struct job {
    int fd;
    uint64_t size, seed, bytes;
} job;

static void *reads(void *arg) {
    job *j = arg;
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, READ_BYTES)) return NULL;
    uint64_t x = j->seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < READS_EACH; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        off_t at = (off_t)(x % ((j->size - READ_BYTES) / 4096)) * 4096;
        ssize_t r = pread(j->fd, buf, READ_BYTES, at);
        if (r > 0) j->bytes += (uint64_t)r;
    }
    free(buf);
    return NULL;
}

double bench_storage_gbps(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) return 0;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < (off_t)(4 * READ_BYTES)) {
        close(fd);
        return 0;
    }
    job jobs[READERS];
    pthread_t th[READERS];
    int started = 0;
    double t0 = hai_time_s();
    for (int i = 0; i < READERS; i++) {
        jobs[i] = (job){fd, (uint64_t)size, (uint64_t)i + 1, 0};
        if (!pthread_create(&th[i], NULL, reads, &jobs[i])) started++;
        else break;
    }
    uint64_t bytes = 0;
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL), bytes += jobs[i].bytes;
    double dt = hai_time_s() - t0;
    close(fd);
    return dt > 0 ? bytes / dt / 1e9 : 0;
}
