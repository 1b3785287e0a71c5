/* Memory read bandwidth of this machine, measured the way decode reads weights: a buffer much
 * larger than the caches, in 2 MiB pages, streamed once per pass by 1 and by N threads (best of
 * several passes).
 * usage: bench_membw [MiB (default 1024)] [threads (default 2)] [--json] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct part {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} part;

static void *reader(void *arg) {
    part *w = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= w->n; i += 4) s0 += w->p[i], s1 += w->p[i + 1], s2 += w->p[i + 2], s3 += w->p[i + 3];
    w->sum = s0 + s1 + s2 + s3; /* kept, so the loads are not optimised away */
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double measure(const uint64_t *buf, size_t n, int threads, uint64_t *sink) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        part parts[64];
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            parts[t] = (part){buf + n / threads * t, n / threads, 0};
            if (t) pthread_create(&th[t], NULL, reader, &parts[t]);
        }
        reader(&parts[0]);
        for (int t = 1; t < threads; t++) pthread_join(th[t], NULL);
        double dt = now_s() - t0, gbs = (double)(n / threads * threads) * 8 / dt / 1e9;
        for (int t = 0; t < threads; t++) *sink += parts[t].sum;
        if (gbs > best) best = gbs;
    }
    return best;
}

int main(int argc, char **argv) {
    size_t mib = 1024;
    int threads = 2, json = 0;
    for (int i = 1, k = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (k++ == 0) mib = (size_t)strtoull(argv[i], NULL, 10);
        else threads = atoi(argv[i]);
    }
    if (mib < 64 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bench_membw [MiB >= 64] [threads 1..64] [--json]\n");
        return 2;
    }
    size_t n = mib * (1u << 20) / 8;
    /* in 2 MiB pages where the OS gives them, as hai holds the weights (src/model.c): the bound is
     * what memory delivers at its best (with 4 KiB pages a plain read loop is ~20% slower here) */
    size_t huge = (size_t)2 << 20, len = (n * 8 + huge - 1) / huge * huge;
    uint64_t *buf = aligned_alloc(huge, len), sink = 0;
    if (buf) madvise(buf, len, MADV_HUGEPAGE);
    if (!buf) {
        fprintf(stderr, "bench_membw: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = i * 0x9E3779B97F4A7C15ull; /* touch every page */
    double one = measure(buf, n, 1, &sink), all = measure(buf, n, threads, &sink);
    if (json)
        printf("{\"mib\":%zu,\"gbs_1\":%.2f,\"gbs_n\":%.2f,\"threads\":%d,\"check\":%llu}\n", mib, one, all, threads,
               (unsigned long long)(sink & 0xFF));
    else
        printf("memory read bandwidth (%zu MiB buffer): %.1f GB/s on 1 thread, %.1f GB/s on %d\n", mib, one, all, threads);
    free(buf);
    return 0;
}
