/* How fast the decode kernels alone stream weights: ~512 MiB of rows of one type (in 2 MiB pages,
 * in the layout the kernels in use want) dotted with one activation row, by 1 and by N threads,
 * best of several passes. Against bench_membw (a plain read loop) this separates what the kernels
 * cost from what the rest of the forward pass costs (bench/tinyllama.sh prints both).
 * --stores also streams with each row's result stored: plainly (a float per row), and a cache line
 * of 16 results at a time around the caches (hai_store_line, as the forward pass does).
 * usage: bench_decode_bw [threads (default 2)] [--json] [--stores] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "hai.h"
#include "kernels/kernels.h"

typedef struct job {
    hai_vec_dot_fn dot;
    const uint8_t *w;
    size_t row_bytes;
    int64_t n, r0, r1;
    const void *act;
    int store; /* 0: results summed, 1: a plain store per row, 2: lines of 16 via hai_store_line */
    float *out;
    float sum;
} job;

static void *worker(void *arg) {
    job *j = arg;
    float s = 0, line[16];
    if (j->store == 0)
        for (int64_t r = j->r0; r < j->r1; r++) s += j->dot(j->n, j->w + (size_t)r * j->row_bytes, j->act);
    else if (j->store == 1)
        for (int64_t r = j->r0; r < j->r1; r++) j->out[r] = j->dot(j->n, j->w + (size_t)r * j->row_bytes, j->act);
    else
        for (int64_t r = j->r0, g = r; r < j->r1; r++) {
            line[r - g] = j->dot(j->n, j->w + (size_t)r * j->row_bytes, j->act);
            if (r + 1 == j->r1 || (r + 1) % 16 == 0) hai_store_line(j->out + g, line, r + 1 - g), g = r + 1;
        }
    if (j->store) hai_store_fence(), s = j->out[j->r0];
    j->sum = s; /* kept, so the dots are not optimised away */
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* best GB/s of 4 passes over rows rows with threads threads */
static double stream(hai_vec_dot_fn dot, const uint8_t *w, size_t rb, int64_t rows, int64_t n, const void *act, int threads, int store,
                     float *out, float *sink) {
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        pthread_t th[64];
        job jobs[64];
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (job){dot, w, rb, n, rows * t / threads, rows * (t + 1) / threads, act, store, out, 0};
            if (t) pthread_create(&th[t], NULL, worker, &jobs[t]);
        }
        worker(&jobs[0]);
        for (int t = 1; t < threads; t++) pthread_join(th[t], NULL);
        double gbs = (double)rows * (double)rb / (now_s() - t0) / 1e9;
        for (int t = 0; t < threads; t++) *sink += jobs[t].sum;
        if (gbs > best) best = gbs;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = 2, json = 0, stores = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--stores")) stores = 1;
        else threads = atoi(argv[i]);
    }
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bench_decode_bw [threads 1..64] [--json] [--stores]\n");
        return 2;
    }
    const hai_kernels *k = hai_kernels_best();
    const int64_t n = 2048; /* TinyLlama's n_embd: the rows of most of its matrices */
    const uint32_t types[] = {HAI_TYPE_Q4_0, HAI_TYPE_Q8_0, HAI_TYPE_Q4_K, HAI_TYPE_Q6_K};
    float *x = malloc((size_t)n * sizeof *x);
    uint8_t *act = calloc(1, hai_act_row_bytes(HAI_ACT_Q16, n) + 64), *dec = calloc(1, hai_act_row_bytes(HAI_ACT_Q16, n) + 64);
    uint8_t *row = malloc((size_t)n * 4), *rp = malloc((size_t)n * 4);
    unsigned seed = 1;
    for (int64_t i = 0; i < n; i++) x[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0x7FFF) / 32768.0f - 0.5f;
    k->quantize_act(x, act, n);
    if (k->decode_prep) k->decode_prep(n, act, dec);
    float sink = 0;
    if (json) printf("{\"kernels\":\"%s\",\"threads\":%d,\"types\":[", k->name, threads);
    else printf("decode kernels (%s) streaming rows of %lld weights from 2 MiB pages:\n", k->name, (long long)n);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        uint32_t t = types[ti], to = k->repack[t];
        hai_error err = {0};
        if (hai_quantize(t, x, row, n, &err) != HAI_OK) {
            fprintf(stderr, "bench_decode_bw: %s\n", err.msg);
            return 1;
        }
        size_t rb = hai_row_bytes(t, n);
        if (to) {
            hai_repack_row(t, to, row, rp, n);
            memcpy(row, rp, hai_repack_row_bytes(to, n));
            rb = hai_repack_row_bytes(to, n);
        }
        uint32_t lt = to ? to : t; /* the layout in memory */
        hai_vec_dot_fn dot = k->decode_dot[lt] ? k->decode_dot[lt] : k->vec_dot[lt];
        const void *a = k->decode_dot[lt] ? (const void *)dec : (const void *)act;
        int64_t rows = ((int64_t)512 << 20) / (int64_t)rb;
        size_t huge = (size_t)2 << 20, len = (rows * rb + huge - 1) / huge * huge;
        uint8_t *w = aligned_alloc(huge, len);
        if (!w) {
            fprintf(stderr, "bench_decode_bw: cannot allocate %zu MiB\n", len >> 20);
            return 1;
        }
        madvise(w, len, MADV_HUGEPAGE);
        for (int64_t r = 0; r < rows; r++) memcpy(w + (size_t)r * rb, row, rb);
        float *out = aligned_alloc(64, ((size_t)rows * sizeof(float) + 63) / 64 * 64);
        if (!out) {
            fprintf(stderr, "bench_decode_bw: out of memory\n");
            return 1;
        }
        double one = stream(dot, w, rb, rows, n, a, 1, 0, out, &sink), all = stream(dot, w, rb, rows, n, a, threads, 0, out, &sink);
        if (json) printf("%s{\"type\":\"%s\",\"gbs_1\":%.2f,\"gbs_n\":%.2f}", ti ? "," : "", hai_type_name(t), one, all);
        else printf("  %-6s %5.1f GB/s on 1 thread, %5.1f GB/s on %d", hai_type_name(t), one, all, threads);
        if (stores && !json)
            printf("; storing each result %5.1f, whole lines of results %5.1f", stream(dot, w, rb, rows, n, a, threads, 1, out, &sink),
                   stream(dot, w, rb, rows, n, a, threads, 2, out, &sink));
        if (!json) printf("\n");
        free(out);
        free(w);
    }
    if (json) printf("],\"check\":%d}\n", sink != sink);
    free(x), free(act), free(dec), free(row), free(rp);
    return 0;
}
