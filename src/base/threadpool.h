/* A persistent pool of worker threads for the forward pass: run(fn) executes fn(arg, ith, nth)
 * on every thread (the caller is thread 0) and returns when all are done. Workers spin briefly
 * between jobs (jobs come every few microseconds during inference), then sleep. */
#ifndef HAI_THREADPOOL_H
#define HAI_THREADPOOL_H

typedef struct hai_pool hai_pool; /* the public hai_threadpool is the same object */

typedef void (*hai_pool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (1 = run everything on the caller). NULL on failure. */
hai_pool *hai_pool_create(int n_threads);
void hai_pool_free(hai_pool *p);
int hai_pool_size(const hai_pool *p);
void hai_pool_run(hai_pool *p, hai_pool_fn fn, void *arg);
/* The workers sleep now instead of spinning for the next job: the caller is about to wait (for
 * weights read from storage) and the CPUs are better given to whoever it waits for. The next
 * hai_pool_run wakes them. */
void hai_pool_rest(hai_pool *p);

#endif
