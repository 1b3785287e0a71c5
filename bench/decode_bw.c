/* How fast the decode kernels alone stream weights: ~512 MiB of rows of one type (in 2 MiB pages,
 * in the layout the kernels in use want) dotted with one activation row, by 1 and by N threads,
 * best of several passes. Against bench_membw (a plain read loop) this separates what the kernels
 * cost from what the rest of the forward pass costs (bench/tinyllama.sh prints both).
 * --stores also streams with each row's result stored: plainly (a float per row), and a cache line
 * of 16 results at a time around the caches (hai_store_line, as the forward pass does).
 * --tokens T streams with T activation rows at once: the few-token kernels where the table has
 * them (each weight read once for all T), against the per-row dots looping over the T rows.
 * --mib M streams M MiB instead of 512 (1: the rows stay in the caches, what the kernels cost alone).
 * --n N: rows of N weights instead of 2048 (a model's other widths: 896 is Qwen2-0.5B's).
 * usage: bench_decode_bw [threads (default 2)] [--json] [--stores] [--tokens T] [--mib M] [--n N] */
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
    hai_few_fn few; /* with nt > 1: the few-token kernel (NULL: the dots, rows outer) */
    int64_t nt, out_rows;
    size_t act_stride;
    void *scratch;
    int passes; /* over the rows (small sets: enough work to time) */
} job;

static void *worker1(job *j);

static void *worker(void *arg) {
    job *j = arg;
    for (int p = 0; p < j->passes; p++) worker1(j);
    return NULL;
}

static void *worker1(job *j) {
    float s = 0, line[16];
    if (j->few) {
        j->few(j->n, j->w, j->row_bytes, j->r0, j->r1, j->act, j->act_stride, j->nt, j->out, (size_t)j->out_rows, false, j->scratch);
        s = j->out[j->r0];
    } else if (j->nt > 1)
        for (int64_t r = j->r0; r < j->r1; r++)
            for (int64_t t = 0; t < j->nt; t++)
                j->out[t * j->out_rows + r] = j->dot(j->n, j->w + (size_t)r * j->row_bytes, (const uint8_t *)j->act + t * j->act_stride);
    else if (j->store == 0)
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
typedef struct many {
    hai_few_fn few;
    int64_t nt;
    size_t act_stride;
    uint8_t *scratch; /* [threads][scratch_stride] */
    size_t scratch_stride;
} many;

static double stream(hai_vec_dot_fn dot, const uint8_t *w, size_t rb, int64_t rows, int64_t n, const void *act, int threads, int store,
                     float *out, float *sink, const many *m, int passes) {
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        pthread_t th[64];
        job jobs[64];
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            int64_t r0 = rows * t / threads / 16 * 16, r1 = t + 1 == threads ? rows : rows * (t + 1) / threads / 16 * 16;
            jobs[t] = (job){dot, w, rb, n, r0, r1, act, store, out, 0, m ? m->few : NULL, m ? m->nt : 1, rows,
                            m ? m->act_stride : 0, m ? m->scratch + (size_t)t * m->scratch_stride : NULL, passes};
            if (t) pthread_create(&th[t], NULL, worker, &jobs[t]);
        }
        worker(&jobs[0]);
        for (int t = 1; t < threads; t++) pthread_join(th[t], NULL);
        double gbs = (double)passes * (double)rows * (double)rb / (now_s() - t0) / 1e9;
        for (int t = 0; t < threads; t++) *sink += jobs[t].sum;
        if (gbs > best) best = gbs;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = 2, json = 0, stores = 0, nt = 1, mib = 512;
    int64_t n = 2048; /* TinyLlama's n_embd: the rows of most of its matrices */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) nt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--stores")) stores = 1;
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoll(argv[++i]);
        else threads = atoi(argv[i]);
    }
    if (threads < 1 || threads > 64 || nt < 1 || nt > 16 || mib < 1 || mib > 4096 || n < 32 || n > 65536 || n % 32) {
        fprintf(stderr, "usage: bench_decode_bw [threads 1..64] [--json] [--stores] [--tokens 1..16] [--mib 1..4096] [--n 32..65536, a multiple of 32]\n");
        return 2;
    }
    const hai_kernels *k = hai_kernels_best();
    const uint32_t types[] = {HAI_TYPE_Q4_0, HAI_TYPE_Q8_0, HAI_TYPE_Q4_K, HAI_TYPE_Q6_K};
    float *x = malloc((size_t)n * sizeof *x);
    size_t arb = hai_decode_row_bytes(n) + 64;
    uint8_t *act = calloc((size_t)nt, arb), *dec = calloc((size_t)nt, arb);
    uint8_t *row = malloc((size_t)n * 64), *pan = malloc((size_t)n * 64); /* 16 rows of up to 4 bytes a weight */
    unsigned seed = 1;
    for (int64_t i = 0; i < n; i++) x[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0x7FFF) / 32768.0f - 0.5f;
    for (int t = 0; t < nt; t++) { /* the rows differ a little (a real batch's tokens do) */
        x[t % n] += 0.25f;
        k->quantize_act(x, act + (size_t)t * arb, n);
        if (k->decode_prep) k->decode_prep(n, act + (size_t)t * arb, dec + (size_t)t * arb);
    }
    size_t scr_stride = k->few_scratch_bytes ? (k->few_scratch_bytes(n) + 127) / 64 * 64 : 0;
    uint8_t *scratch = scr_stride ? aligned_alloc(64, scr_stride * (size_t)threads) : NULL;
    float sink = 0;
    int passes = 512 / mib > 1 ? 512 / mib : 1;
    if (json) printf("{\"kernels\":\"%s\",\"threads\":%d,\"types\":[", k->name, threads);
    else if (nt > 1) printf("%d tokens at once (%s) streaming rows of %lld weights from 2 MiB pages (GB/s of weights):\n", nt, k->name, (long long)n);
    else printf("decode kernels (%s) streaming rows of %lld weights from 2 MiB pages:\n", k->name, (long long)n);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        uint32_t t = types[ti], to = k->repack[t];
        if (n % hai_type_block_size(t)) continue; /* a width the K-quants' 256-blocks do not divide */
        hai_error err = {0};
        if (hai_quantize(t, x, row, n, &err) != HAI_OK) {
            fprintf(stderr, "bench_decode_bw: %s\n", err.msg);
            return 1;
        }
        /* a panel of 16 copies of the row, in the layout in memory (lt) */
        size_t ob = hai_row_bytes(t, n), rb = to ? hai_repack_row_bytes(to, n) : ob;
        for (int r = 1; r < 16; r++) memcpy(row + (size_t)r * ob, row, ob);
        if (to) hai_repack(t, to, row, ob, pan, n, 16);
        else memcpy(pan, row, 16 * ob);
        uint32_t lt = to ? to : t;
        bool panels = hai_wtype_panels(lt); /* no per-row dot: one token on the few-token kernel too */
        hai_vec_dot_fn dot = panels ? NULL : k->decode_dot[lt] ? k->decode_dot[lt] : k->vec_dot[lt];
        const void *a = panels || k->decode_dot[lt] ? (const void *)dec : (const void *)act;
        many one_few = {k->few[lt], 1, arb, scratch, scr_stride}, *m1 = panels ? &one_few : NULL;
        int64_t rows = ((int64_t)mib << 20) / (int64_t)rb / 16 * 16;
        size_t huge = (size_t)2 << 20, len = (rows * rb + huge - 1) / huge * huge;
        uint8_t *w = aligned_alloc(huge, len);
        if (!w) {
            fprintf(stderr, "bench_decode_bw: cannot allocate %zu MiB\n", len >> 20);
            return 1;
        }
        madvise(w, len, MADV_HUGEPAGE);
        for (int64_t r = 0; r < rows; r += 16) memcpy(w + (size_t)r * rb, pan, 16 * rb);
        float *out = aligned_alloc(64, ((size_t)rows * (size_t)nt * sizeof(float) + 63) / 64 * 64);
        if (!out) {
            fprintf(stderr, "bench_decode_bw: out of memory\n");
            return 1;
        }
        if (nt > 1) { /* the few-token kernel against the dots */
            many dots = {NULL, nt, arb, NULL, 0}, few = {k->few[lt], nt, arb, scratch, scr_stride};
            double gd = dot ? stream(dot, w, rb, rows, n, a, threads, 0, out, &sink, &dots, passes) : 0;
            double gf = few.few ? stream(dot, w, rb, rows, n, dec, threads, 0, out, &sink, &few, passes) : 0;
            if (json) printf("%s{\"type\":\"%s\",\"tokens\":%d,\"gbs_dots\":%.2f,\"gbs_few\":%.2f}", ti ? "," : "", hai_type_name(t), nt, gd, gf);
            else if (few.few && !dot) printf("  %-6s few-token kernel %5.1f GB/s on %d threads (in panels: no per-row dots)\n", hai_type_name(t), gf, threads);
            else if (few.few) printf("  %-6s dots %5.1f GB/s, few-token kernel %5.1f GB/s (%.2fx) on %d threads\n", hai_type_name(t), gd, gf, gf / gd, threads);
            else printf("  %-6s dots %5.1f GB/s on %d threads (no few-token kernel in this table)\n", hai_type_name(t), gd, threads);
            free(out);
            free(w);
            continue;
        }
        double one = stream(dot, w, rb, rows, n, a, 1, 0, out, &sink, m1, passes), all = stream(dot, w, rb, rows, n, a, threads, 0, out, &sink, m1, passes);
        if (json) printf("%s{\"type\":\"%s\",\"gbs_1\":%.2f,\"gbs_n\":%.2f}", ti ? "," : "", hai_type_name(t), one, all);
        else printf("  %-6s %5.1f GB/s on 1 thread, %5.1f GB/s on %d", hai_type_name(t), one, all, threads);
        if (stores && !json && !panels)
            printf("; storing each result %5.1f, whole lines of results %5.1f", stream(dot, w, rb, rows, n, a, threads, 1, out, &sink, NULL, passes),
                   stream(dot, w, rb, rows, n, a, threads, 2, out, &sink, NULL, passes));
        if (!json) printf("\n");
        free(out);
        free(w);
    }
    if (json) printf("],\"check\":%d}\n", sink != sink);
    free(x), free(act), free(dec), free(row), free(pan), free(scratch);
    return 0;
}
