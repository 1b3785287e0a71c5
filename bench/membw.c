/* Memory read bandwidth of this machine, measured the way decode reads weights: a buffer much
 * larger than the caches, in 2 MiB pages, streamed once per pass by 1 and by N threads (best of
 * several passes). A single access pattern under-reads some CPUs (a plain loop read 30-37 GB/s on
 * an AMD EPYC Zen 4 where the Q8_0 decode kernel streamed 37-46), so "% of the bound" meant less
 * there: the bound is the best of several patterns - a plain loop, vector loads with software
 * prefetch at three distances, the threads' shares as two halves or interleaved 2 MiB chunks, and
 * loads paced by some arithmetic as a decode kernel's are - and each pattern's figure is printed.
 * usage: bench_membw [MiB (default 1024)] [threads (default 2)] [--json] */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CHUNK ((size_t)2 << 20) /* bytes a thread takes at a time in the interleaved split */
#define PACED 0x100000           /* flag on prefetch: some arithmetic on each 128 bytes, as a decode kernel does */

typedef struct pattern {
    const char *name;
    int prefetch;    /* bytes ahead of the loads (| PACED); 0: none; -1: the plain scalar loop */
    int interleaved; /* threads take alternate chunks instead of one half each */
} pattern;

static const pattern patterns[] = {
    {"plain loop", -1, 0},
    {"vector loads", 0, 0},
    {"vector loads, prefetch 512 B", 512, 0},
    {"vector loads, prefetch 2 KiB", 2048, 0},
    {"vector loads, prefetch 8 KiB", 8192, 0},
    {"vector loads, prefetch 2 KiB, interleaved chunks", 2048, 1},
    {"vector loads, prefetch 2 KiB, paced as a decode kernel", 2048 | PACED, 0},
    {"vector loads, prefetch 8 KiB, paced as a decode kernel", 8192 | PACED, 0},
};

typedef struct part {
    const uint8_t *p;
    size_t bytes, stride; /* a run of `bytes` every `stride` (= bytes: one run) */
    size_t total;         /* bytes to read in all */
    int prefetch;
    uint64_t sum;
} part;

static uint64_t read_plain(const uint8_t *p, size_t bytes) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) s0 += q[i], s1 += q[i + 1], s2 += q[i + 2], s3 += q[i + 3];
    return s0 + s1 + s2 + s3;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static uint64_t read_vec(const uint8_t *p, size_t bytes, int prefetch) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    __m256 f0 = _mm256_setzero_ps(), f1 = f0;
    bool paced = prefetch & PACED;
    prefetch &= ~PACED;
    for (size_t i = 0; i + 128 <= bytes; i += 128) {
        if (prefetch) _mm_prefetch((const char *)p + i + prefetch, _MM_HINT_T0), _mm_prefetch((const char *)p + i + prefetch + 64, _MM_HINT_T0);
        __m256i v0 = _mm256_load_si256((const __m256i *)(p + i)), v1 = _mm256_load_si256((const __m256i *)(p + i + 32));
        __m256i v2 = _mm256_load_si256((const __m256i *)(p + i + 64)), v3 = _mm256_load_si256((const __m256i *)(p + i + 96));
        if (paced) { /* about the float work a kernel does per 128 bytes of weights */
            f0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(v0, v1)), _mm256_castsi256_ps(v2), f0);
            f1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(v2, v3)), _mm256_castsi256_ps(v0), f1);
        }
        a0 = _mm256_xor_si256(a0, v0), a1 = _mm256_xor_si256(a1, v1), a2 = _mm256_xor_si256(a2, v2), a3 = _mm256_xor_si256(a3, v3);
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    a = _mm256_xor_si256(a, _mm256_castps_si256(_mm256_add_ps(f0, f1)));
    uint64_t v[4];
    _mm256_storeu_si256((__m256i *)v, a);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
static int have_vec(void) { return __builtin_cpu_supports("avx2"); }
#else
static uint64_t read_vec(const uint8_t *p, size_t bytes, int prefetch) {
    (void)prefetch;
    return read_plain(p, bytes);
}
static int have_vec(void) { return 0; }
#endif

static void *reader(void *arg) {
    part *w = arg;
    uint64_t s = 0;
    for (size_t off = 0, done = 0; done < w->total; off += w->stride, done += w->bytes)
        s += w->prefetch < 0 ? read_plain(w->p + off, w->bytes) : read_vec(w->p + off, w->bytes, w->prefetch);
    w->sum = s; /* kept, so the loads are not optimised away */
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* best GB/s of 5 passes over len bytes (a multiple of threads * CHUNK) */
static double measure(const uint8_t *buf, size_t len, int threads, const pattern *pt, uint64_t *sink) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        part parts[64];
        size_t share = len / (size_t)threads;
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            if (pt->interleaved)
                parts[t] = (part){buf + CHUNK * (size_t)t, CHUNK, CHUNK * (size_t)threads, share, pt->prefetch, 0};
            else
                parts[t] = (part){buf + share * (size_t)t, share, share, share, pt->prefetch, 0};
            if (t) pthread_create(&th[t], NULL, reader, &parts[t]);
        }
        reader(&parts[0]);
        for (int t = 1; t < threads; t++) pthread_join(th[t], NULL);
        double dt = now_s() - t0, gbs = (double)(share * (size_t)threads) / dt / 1e9;
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
    /* in 2 MiB pages where the OS gives them, as hai holds the weights (src/model/model.c): the bound is
     * what memory delivers at its best (with 4 KiB pages a plain read loop is ~20% slower here);
     * a whole number of chunks per thread, and a pass's prefetches stay inside the buffer's pages */
    size_t unit = CHUNK * (size_t)threads, len = (mib << 20) / unit * unit;
    if (!len) len = unit;
    uint8_t *buf = aligned_alloc(CHUNK, len + CHUNK);
    if (!buf) {
        fprintf(stderr, "bench_membw: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    madvise(buf, len + CHUNK, MADV_HUGEPAGE);
    uint64_t *w = (uint64_t *)buf, sink = 0;
    for (size_t i = 0; i < (len + CHUNK) / 8; i++) w[i] = i * 0x9E3779B97F4A7C15ull; /* touch every page */
    int np = have_vec() ? (int)(sizeof patterns / sizeof *patterns) : 1;
    double one = 0, all = 0, by[sizeof patterns / sizeof *patterns][2];
    for (int i = 0; i < np; i++) {
        by[i][0] = patterns[i].interleaved ? 0 : measure(buf, len, 1, &patterns[i], &sink);
        by[i][1] = measure(buf, len, threads, &patterns[i], &sink);
        if (by[i][0] > one) one = by[i][0];
        if (by[i][1] > all) all = by[i][1];
    }
    if (json) {
        printf("{\"mib\":%zu,\"gbs_1\":%.2f,\"gbs_n\":%.2f,\"threads\":%d,\"patterns\":[", len >> 20, one, all, threads);
        for (int i = 0; i < np; i++)
            printf("%s{\"pattern\":\"%s\",\"gbs_1\":%.2f,\"gbs_n\":%.2f}", i ? "," : "", patterns[i].name, by[i][0], by[i][1]);
        printf("],\"check\":%llu}\n", (unsigned long long)(sink & 0xFF));
    } else {
        for (int i = 0; i < np; i++)
            printf("  %-56s %5.1f GB/s on 1 thread, %5.1f GB/s on %d\n", patterns[i].name, by[i][0], by[i][1], threads);
        printf("memory read bandwidth (%zu MiB buffer, the best pattern): %.1f GB/s on 1 thread, %.1f GB/s on %d\n", len >> 20, one, all,
               threads);
    }
    free(buf);
    return 0;
}
