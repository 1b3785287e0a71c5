/* hai bench with streamed weights: what the storage gives, measured on the model file itself the
 * way the streamer reads it (O_DIRECT, several reads in flight), so that tokens/s can be set
 * against storage bandwidth / bytes read a token in the same run. */
#include "bench_storage.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define READERS 4
#define BYTES_EACH (192u << 20) /* a reader's share of a round */

typedef struct job {
    int fd;
    uint64_t size, seed, bytes, len;
} job;

static void *reads(void *arg) {
    job *j = arg;
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, j->len)) return NULL;
    uint64_t x = j->seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t i = 0; i < BYTES_EACH / j->len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        off_t at = (off_t)(x % ((j->size - j->len) / 4096)) * 4096;
        ssize_t r = pread(j->fd, buf, j->len, at);
        if (r > 0) j->bytes += (uint64_t)r;
    }
    free(buf);
    return NULL;
}

double bench_storage_gbps(const char *path, uint64_t read_bytes, int round) {
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) return 0;
    off_t size = lseek(fd, 0, SEEK_END);
    read_bytes = (read_bytes + 4095) / 4096 * 4096;
    if (!read_bytes || size < (off_t)(4 * read_bytes)) {
        close(fd);
        return 0;
    }
    job jobs[READERS];
    pthread_t th[READERS];
    int started = 0;
    double t0 = hai_time_s();
    for (int i = 0; i < READERS; i++) {
        jobs[i] = (job){fd, (uint64_t)size, (uint64_t)(round * READERS + i) + 1, 0, read_bytes};
        if (!pthread_create(&th[i], NULL, reads, &jobs[i])) started++;
        else break;
    }
    uint64_t bytes = 0;
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL), bytes += jobs[i].bytes;
    double dt = hai_time_s() - t0;
    close(fd);
    return dt > 0 ? bytes / dt / 1e9 : 0;
}
