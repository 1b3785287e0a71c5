/* Thread pool: a generation counter announces each job; workers spin on it for a while, then
 * wait on a condition variable. The caller works as thread 0 and spins until the others report. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define SPIN_ROUNDS 20000 /* ~ tens of microseconds before a worker sleeps */

struct hai_pool {
    int n;
    pthread_t *threads;
    hai_pool_fn fn;
    void *arg;
    _Alignas(64) atomic_uint gen;     /* bumped once per job */
    _Alignas(64) atomic_int pending;  /* workers still running the current job */
    atomic_bool stop;
    atomic_bool rest; /* sleep now rather than spin: the caller is about to wait on something slow */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int sleepers;
    pthread_mutex_t run_mu; /* one job at a time: contexts sharing the pool take turns */
};

typedef struct worker_arg {
    hai_pool *p;
    int ith;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *worker(void *v) {
    worker_arg *wa = v;
    hai_pool *p = wa->p;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0; /* gen starts at 0 and only run() bumps it: a job posted before this thread started is still seen */
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPIN_ROUNDS && !atomic_load_explicit(&p->rest, memory_order_relaxed)) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            /* seq_cst with the caller's bump of gen and load of sleepers: one of the two sees the other */
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

hai_pool *hai_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    hai_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&p->threads[i], NULL, worker, (wa->p = p, wa->ith = i, wa)) != 0) {
            free(wa);
            p->n = i; /* run with the threads that did start */
            break;
        }
    }
    return p;
}

void hai_pool_free(hai_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->run_mu);
    free(p->threads);
    free(p);
}

int hai_pool_size(const hai_pool *p) { return p ? p->n : 1; }

void hai_pool_rest(hai_pool *p) {
    if (p) atomic_store_explicit(&p->rest, true, memory_order_relaxed);
}

void hai_pool_run(hai_pool *p, hai_pool_fn fn, void *arg) {
    if (!p) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    if (p->n == 1) {
        fn(arg, 0, 1);
        pthread_mutex_unlock(&p->run_mu);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->rest, false, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    /* the others usually finish within microseconds of this thread; if not (a busy machine, an
     * emulator), give the CPU to them rather than spin against them */
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        if (++spins < 4096) cpu_relax();
        else sched_yield();
    }
    pthread_mutex_unlock(&p->run_mu);
}

/* The public face of the pool. */
#include "error.h"
#include <unistd.h>

hai_status hai_threadpool_create(int n_threads, hai_threadpool **out, hai_error *err) {
    if (!out) return hai_fail(err, HAI_ERR_INVALID, "threadpool: NULL argument");
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    *out = (hai_threadpool *)hai_pool_create(n_threads);
    return *out ? HAI_OK : hai_fail(err, HAI_ERR_NOMEM, "threadpool: cannot start %d threads", n_threads);
}

void hai_threadpool_free(hai_threadpool *p) { hai_pool_free((hai_pool *)p); }
