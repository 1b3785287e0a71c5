/* Weights streamed from the model file: the plan (what streams, how much cache), the cache of
 * slots, the reading threads. See stream.h. */
/* O_DIRECT needs _GNU_SOURCE, which the build defines */
#include "model/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/memory.h"
#include "kernels/kernels.h"

#define IO_ALIGN 4096 /* O_DIRECT: offsets, lengths and buffers in whole logical blocks (4 KiB covers them all) */
/* reads in flight: on the benchmark VM's virtio disk (O_DIRECT, 256 KiB - 1 MiB reads) 2 gave
 * 1.0-1.5 GB/s, 4 gave 1.8-1.9, 8 no more; the experts' decode went from 8.9 to 13.8 tok/s */
#define N_READERS 4
#define STAGE_CAP (4u << 20) /* a reader's buffer: larger matrices are read in runs of rows */
#define RING_SLOTS 3  /* dense layers: the one computing and two being read (a layer's last reads and the next's first overlap) */

enum { SLOT_EMPTY, SLOT_LOADING, SLOT_READY };

typedef struct slot {
    int32_t unit;        /* -1: none */
    uint8_t state;
    uint32_t queued;     /* items waiting in the queue (not yet being read) */
    uint32_t parts_left; /* items not yet read */
    bool part_failed;
    bool prefetched;     /* read ahead and not yet used */
    uint32_t pins;
    uint64_t tick;       /* last use: the group's smallest is evicted */
    uint8_t *mem;
    hai_weight w[STREAM_MAX_PARTS];
} slot;

struct hai_stream {
    int mode;
    int fd;
    bool direct;                /* fd is O_DIRECT; else pages are dropped after each read */
    const uint8_t *file_base;   /* the mapping's first byte: a view's data - file_base is its file offset */
    uint32_t n_units, n_parts, n_groups, group_units, group_slots;
    hai_weight *src;            /* [n_units][n_parts]: as in the file (data into the mapping, never read) */
    int32_t *slot_of;           /* [n_units]: its slot, -1: none */
    uint8_t *failed;            /* [n_units]: its last read failed (the waiter reports it) */
    slot *slots;                /* [n_groups][group_slots] */
    size_t slot_bytes, stage_bytes;
    uint8_t *mem, *stage[N_READERS];
    pthread_mutex_t mu;
    pthread_cond_t ready, work;
    pthread_mutex_t *turn;      /* [n_groups] */
    uint32_t *turn_no, *used_turn; /* [n_groups] turns taken, [n_units] the turn of its group it was last wanted in */
    uint64_t *turn_tick;        /* [n_groups]: the tick its last turn began at: read-ahead evicts only
                                 * what that turn did not use (the last token's experts stay) */
    struct item *queue, *qtmp;  /* runs of rows to read, a ring: demand at the front, read-ahead at the back */
    uint32_t q_head, q_len, q_cap;
    pthread_t readers[N_READERS];
    uint32_t n_readers;
    bool stop, started;
    uint64_t tick;
    hai_stream_stats st;
    hai_error io_err;           /* the last failed read */
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static size_t up64(size_t n) { return (n + 63) / 64 * 64; }

/* A part as placed (in the kernels' layout where they have one). */
static size_t placed_bytes(const hai_weight *f, uint32_t *to) {
    *to = f->type < HAI_TYPE_COUNT ? hai_kernels_best()->repack[f->type] : 0;
    return up64(*to ? hai_repack_bytes(*to, f->n_in, f->n_out) : f->row_bytes * (size_t)f->n_out);
}

static size_t file_span(const hai_stream *s, const hai_weight *f, uint64_t *at) {
    uint64_t off = (uint64_t)(f->data - s->file_base), len = f->row_bytes * (uint64_t)f->n_out;
    *at = off / IO_ALIGN * IO_ALIGN;
    return (size_t)((off + len - *at + IO_ALIGN - 1) / IO_ALIGN * IO_ALIGN);
}

/* Rows of a matrix read at once: all, or runs of whole 16-row panels within STAGE_CAP. */
static int64_t chunk_rows(const hai_weight *f) {
    if (f->row_bytes * (uint64_t)f->n_out <= STAGE_CAP) return f->n_out;
    int64_t r = (int64_t)(STAGE_CAP / f->row_bytes) / 16 * 16;
    return r < 16 ? 16 : r;
}

/* The buffer a reader needs for f: a run of rows and the blocks that align it at both ends. */
static size_t stage_need(const hai_weight *f) { return (size_t)chunk_rows(f) * f->row_bytes + 2 * IO_ALIGN; }

/* ---- the plan ----------------------------------------------------------------------------------- */

/* Takes weight w into unit u's part p: the file view kept, the model's copy marked streamed (no
 * data; type and row size as placed, which is what the context's sizing reads). */
static uint64_t take(hai_stream *s, uint32_t u, uint32_t p, hai_weight *w) {
    s->src[(size_t)u * s->n_parts + p] = *w;
    if (!w->data) return 0;
    uint32_t to;
    placed_bytes(w, &to);
    uint64_t bytes = w->row_bytes * (uint64_t)w->n_out;
    if (to) w->row_bytes = hai_repack_row_bytes(to, w->n_in), w->type = to;
    w->data = NULL;
    return bytes;
}

static size_t unit_bytes(const hai_stream *s, uint32_t u, size_t *stage) {
    size_t b = 0;
    for (uint32_t p = 0; p < s->n_parts; p++) {
        const hai_weight *f = &s->src[(size_t)u * s->n_parts + p];
        if (!f->data) continue;
        uint32_t to;
        b += placed_bytes(f, &to);
        if (stage_need(f) > *stage) *stage = stage_need(f);
    }
    return b;
}

/* a streamed dense layer's parts: its matrices but the router (hai_layer_matrix's first) */
#define LAYER_PARTS (HAI_LAYER_MATRICES - 1)
static hai_weight *layer_part(hai_layer *L, uint32_t p) { return hai_layer_matrix(L, p); }

static uint64_t layer_file_bytes(hai_layer *L) {
    uint64_t b = 0;
    for (uint32_t p = 0; p < LAYER_PARTS; p++) b += layer_part(L, p)->data ? layer_part(L, p)->row_bytes * (uint64_t)layer_part(L, p)->n_out : 0;
    return b;
}

static uint64_t layer_placed_bytes(hai_layer *L) {
    uint64_t b = 0;
    for (uint32_t p = 0; p < LAYER_PARTS; p++) {
        uint32_t to;
        b += layer_part(L, p)->data ? placed_bytes(layer_part(L, p), &to) : 0;
    }
    return b;
}

static hai_status alloc_tables(hai_stream *s, hai_error *err) {
    s->src = calloc((size_t)s->n_units * s->n_parts, sizeof *s->src);
    s->slot_of = malloc(s->n_units * sizeof *s->slot_of);
    s->failed = calloc(s->n_units, 1);
    if (!s->src || !s->slot_of || !s->failed) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    for (uint32_t u = 0; u < s->n_units; u++) s->slot_of[u] = -1;
    return HAI_OK;
}

static double mib(uint64_t b) { return b / 1048576.0; }

/* The slots' region: in 2 MiB pages when it is large (decode reads weights faster from them,
 * memory.h), else in 4 KiB pages, so that a small cache does not take a whole huge page. */
#define HUGE_FROM (8u << 20)
static uint64_t region_bytes(uint64_t n) { return n >= HUGE_FROM ? hai_huge_bytes(n) : (n + IO_ALIGN - 1) / IO_ALIGN * IO_ALIGN; }

/* The most slots (up to max) whose region fits in room. */
static uint64_t slots_fitting(uint64_t room, uint64_t slot_bytes, uint64_t max) {
    uint64_t n = room / slot_bytes;
    if (n > max) n = max;
    while (n && region_bytes(n * slot_bytes) > room) n--;
    return n;
}

static uint32_t hp_least_ctx(const hai_hparams *hp) { return hp->n_ctx_train && hp->n_ctx_train < 512 ? hp->n_ctx_train : 512; }

static hai_status plan_stream(hai_model *m, const hai_model_params *p, uint64_t room_for_ctx, hai_error *err);

hai_status hai_stream_plan(hai_model *m, const hai_model_params *p, hai_error *err) {
    hai_budget *b = m->budget;
    hai_stream_mode mode = p ? p->stream : HAI_STREAM_AUTO;
    bool over = b && m->weights_bytes + b->used > b->limit;
    if (mode == HAI_STREAM_OFF && over)
        return hai_fail(err, HAI_ERR_LIMIT, "model: the weights take %.1f MiB; the memory budget is %.1f MiB", mib(m->weights_bytes), mib(b->limit));
    if (mode == HAI_STREAM_ON || (mode == HAI_STREAM_AUTO && over)) return plan_stream(m, p, 0, err);
    /* auto streams too when the weights in memory would leave no room for a context of use (one
     * sequence of 512 tokens, fewer when the model was trained on fewer) and streaming leaves it:
     * then the cache is what the context does not need. Else the weights stay in memory. */
    hai_context_params least = hai_context_default_params();
    least.n_ctx = hp_least_ctx(&m->hp), least.n_threads = 1;
    uint64_t ctx_b = b && mode == HAI_STREAM_AUTO ? hai_context_plan_bytes(m, &least) : 0;
    if (ctx_b && m->weights_bytes + b->used + ctx_b > b->limit) {
        hai_error e2 = {0};
        hai_status st = plan_stream(m, p, ctx_b, &e2);
        if (st != HAI_ERR_LIMIT) {
            if (st) *err = e2;
            return st;
        }
        hai_stream_free(m->stream); /* too little to stream into either: nothing was taken yet */
        m->stream = NULL;
    }
    if (b) b->used += m->weights_bytes;
    return HAI_OK;
}

/* Streams what it can, its cache p->stream_cache, or what the budget leaves: all but room_for_ctx
 * when that is given, else 3/4 (the rest for contexts). */
static hai_status plan_stream(hai_model *m, const hai_model_params *p, uint64_t room_for_ctx, hai_error *err) {
    hai_budget *b = m->budget;
    const hai_hparams *hp = &m->hp;
    hai_stream *s = calloc(1, sizeof *s);
    if (!s) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    s->fd = -1;
    m->stream = s;
    const hai_gguf_tensor *t0 = hai_gguf_tensor_at(m->gguf, 0);
    s->file_base = (const uint8_t *)t0->data - t0->offset - hai_gguf_data_offset(m->gguf);
    s->mode = hp->n_expert ? STREAM_EXPERTS : STREAM_LAYERS;
    uint64_t streamable = hp->n_expert ? m->expert_bytes : 0;
    for (uint32_t l = 0; !hp->n_expert && l < hp->n_layer; l++) streamable += layer_file_bytes(&m->layers[l]);
    uint64_t resident = m->weights_bytes - streamable; /* before layers are chosen to stay */
    if (b && b->used + resident > b->limit)
        return hai_fail(err, HAI_ERR_LIMIT, "model: the weights that cannot stream (%s) take %.1f MiB; the memory budget is %.1f MiB",
                        hp->n_expert ? "all but the experts" : "embeddings, output, norms", mib(resident), mib(b->limit));
    /* the cache: what the caller says, else 3/4 of what the budget leaves (the rest for contexts) */
    uint64_t left = b ? b->limit - b->used - resident : 0;
    left = left > (2u << 20) ? left - (2u << 20) : 0; /* the resident weights' last 2 MiB page, not yet counted */
    uint64_t cache = p && p->stream_cache ? p->stream_cache
                     : b && room_for_ctx ? (left > room_for_ctx ? left - room_for_ctx : 0)
                     : b ? left / 4 * 3 : streamable / 4;
    s->n_readers = N_READERS;
    hai_status st;
    if (s->mode == STREAM_EXPERTS) {
        s->n_parts = 3, s->n_groups = hp->n_layer, s->group_units = hp->n_expert, s->n_units = hp->n_layer * hp->n_expert;
        if ((st = alloc_tables(s, err))) return st;
        uint32_t ne = hp->n_expert;
        for (uint32_t l = 0; l < hp->n_layer; l++) /* unit l * ne + e: expert e of layer l, its gate, up, down */
            for (uint32_t e = 0; e < ne; e++)
                for (uint32_t k = 0; k < 3; k++) s->src[((size_t)l * ne + e) * 3 + k] = m->layers[l].exps[k * ne + e];
        for (uint32_t u = 0; u < s->n_units; u++) {
            size_t ub = unit_bytes(s, u, &s->stage_bytes);
            if (ub > s->slot_bytes) s->slot_bytes = ub;
        }
        uint64_t per = (uint64_t)s->slot_bytes * hp->n_layer, fixed;
        for (;; s->n_readers--) { /* a cache too small for 4 readers' buffers: fewer readers */
            fixed = (uint64_t)s->n_readers * s->stage_bytes;
            s->group_slots = (uint32_t)(cache > fixed ? slots_fitting(cache - fixed, per, ne) : 0);
            if (s->group_slots >= hp->n_expert_used || s->n_readers == 1) break;
        }
        if (s->group_slots < hp->n_expert_used)
            return hai_fail(err, HAI_ERR_LIMIT, "model: streaming the experts needs %u of each layer's in memory (%.2f MiB); %s %.2f MiB",
                            hp->n_expert_used, mib(region_bytes(hp->n_expert_used * per) + fixed),
                            p && p->stream_cache ? "the stream cache is" : "the memory budget leaves the cache", mib(cache));
        for (uint32_t l = 0; l < hp->n_layer; l++)
            for (uint32_t e = 0; e < ne; e++)
                for (uint32_t k = 0; k < 3; k++) take(s, l * ne + e, k, &m->layers[l].exps[k * ne + e]);
    } else {
        /* the first layers stay resident; the others pass through RING_SLOTS buffers */
        uint64_t slot_b = 0, stage = 0;
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            uint64_t lb = layer_placed_bytes(&m->layers[l]);
            if (lb > slot_b) slot_b = lb;
            for (uint32_t k = 0; k < LAYER_PARTS; k++) {
                const hai_weight *f = layer_part(&m->layers[l], k);
                if (f->data && stage_need(f) > stage) stage = stage_need(f);
            }
        }
        uint64_t fixed;
        uint32_t ring;
        for (;; s->n_readers--) { /* a cache too small for 4 readers' buffers: fewer readers */
            fixed = (uint64_t)s->n_readers * stage;
            ring = cache > fixed ? (uint32_t)slots_fitting(cache - fixed, slot_b, RING_SLOTS) : 0;
            if (ring || s->n_readers == 1) break;
        }
        if (!ring)
            return hai_fail(err, HAI_ERR_LIMIT, "model: streaming the layers needs one layer in memory (%.2f MiB); %s %.2f MiB",
                            mib(region_bytes(slot_b) + fixed), p && p->stream_cache ? "the stream cache is" : "the memory budget leaves the cache",
                            mib(cache));
        uint64_t room = cache - fixed - region_bytes(ring * slot_b), kept = 0;
        uint32_t first = 0; /* layers [0, first) stay resident */
        while (first + 1 < hp->n_layer && kept + layer_placed_bytes(&m->layers[first]) <= room) kept += layer_placed_bytes(&m->layers[first++]);
        s->n_parts = LAYER_PARTS, s->n_groups = 1, s->n_units = hp->n_layer - first, s->group_units = s->n_units;
        s->group_slots = ring < s->n_units ? ring : s->n_units;
        s->slot_bytes = slot_b, s->stage_bytes = stage;
        if ((st = alloc_tables(s, err))) return st;
        for (uint32_t l = first; l < hp->n_layer; l++) {
            hai_layer *L = &m->layers[l];
            L->streamed = true, L->stream_unit = l - first;
            for (uint32_t k = 0; k < LAYER_PARTS; k++) take(s, l - first, k, layer_part(L, k));
        }
        resident = m->weights_bytes;
        for (uint32_t u = 0; u < s->n_units; u++)
            for (uint32_t k = 0; k < LAYER_PARTS; k++) {
                const hai_weight *f = &s->src[(size_t)u * LAYER_PARTS + k];
                if (f->data) resident -= f->row_bytes * (uint64_t)f->n_out;
            }
    }
    if (b) b->used += resident;
    s->st.streamed_bytes = m->weights_bytes - resident;
    return HAI_OK;
}

/* ---- reading ------------------------------------------------------------------------------------ */

/* Reads [at, at + span) (whole blocks for O_DIRECT) of which the first `need` bytes must exist. */
static hai_status read_span(hai_stream *s, uint8_t *dst, size_t span, uint64_t at, size_t need, hai_error *err) {
    size_t done = 0;
    while (done < span) {
        ssize_t r = pread(s->fd, dst + done, span - done, (off_t)(at + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return hai_fail(err, HAI_ERR_IO, "model: reading streamed weights at byte %llu: %s", (unsigned long long)(at + done), strerror(errno));
        if (r == 0) break;
        done += (size_t)r;
    }
    if (!s->direct) posix_fadvise(s->fd, (off_t)at, (off_t)span, POSIX_FADV_DONTNEED); /* RAM must not hold what was read */
    return done >= need ? HAI_OK
                        : hai_fail(err, HAI_ERR_IO, "model: the file ends at byte %llu, inside streamed weights (it changed after loading?)",
                                   (unsigned long long)(at + done));
}

/* A unit's read is split into items - a run of rows of one matrix - that whichever reader is free
 * takes: one miss keeps all of them busy, and the storage sees several reads in flight. */
typedef struct item {
    int32_t slot;
    uint16_t part, chunk;
} item;

static uint32_t n_chunks(const hai_weight *f) { return f->data ? (uint32_t)((f->n_out + chunk_rows(f) - 1) / chunk_rows(f)) : 0; }

/* Reads item it into its slot (whose matrices' places stream_enqueue set) through the reader's
 * staging buffer, placed as the kernels want it. */
static hai_status load_item(hai_stream *s, item it, uint8_t *stage, hai_error *err) {
    slot *sl = &s->slots[it.slot];
    const hai_weight *f = &s->src[(size_t)sl->unit * s->n_parts + it.part], *w = &sl->w[it.part];
    uint32_t to = w->type != f->type ? w->type : 0;
    int64_t step = chunk_rows(f), r0 = (int64_t)it.chunk * step, nr = f->n_out - r0 < step ? f->n_out - r0 : step;
    uint64_t a = (uint64_t)(f->data - s->file_base) + (uint64_t)r0 * f->row_bytes, start = a / IO_ALIGN * IO_ALIGN;
    uint64_t len = (uint64_t)nr * f->row_bytes;
    hai_status st = read_span(s, stage, (size_t)((a + len - start + IO_ALIGN - 1) / IO_ALIGN * IO_ALIGN), start, (size_t)(a + len - start), err);
    if (st) return st;
    uint8_t *dst = (uint8_t *)w->data + (size_t)r0 * w->row_bytes; /* runs are whole panels: each lands at its rows' place */
    if (to)
        hai_repack(f->type, to, stage + (a - start), f->row_bytes, dst, f->n_in, nr);
    else
        memcpy(dst, stage + (a - start), (size_t)len);
    return HAI_OK;
}

typedef struct reader_arg {
    hai_stream *s;
    uint32_t i;
} reader_arg;

static void *reader(void *arg) {
    hai_stream *s = ((reader_arg *)arg)->s;
    uint8_t *stage = s->stage[((reader_arg *)arg)->i];
    free(arg);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && !s->q_len) pthread_cond_wait(&s->work, &s->mu);
        if (s->stop) break;
        item it = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap, s->q_len--;
        slot *sl = &s->slots[it.slot];
        uint32_t u = (uint32_t)sl->unit;
        const hai_weight *f = &s->src[(size_t)u * s->n_parts + it.part];
        sl->queued--;
        pthread_mutex_unlock(&s->mu);
        hai_error e = {0};
        double t0 = now_s();
        hai_status st = load_item(s, it, stage, &e);
        double t1 = now_s();
        pthread_mutex_lock(&s->mu);
        s->st.read_seconds += t1 - t0;
        if (st) {
            s->io_err = e;
            sl->part_failed = true;
        } else {
            int64_t step = chunk_rows(f), rows = f->n_out - (int64_t)it.chunk * step;
            s->st.bytes_read += (uint64_t)(rows < step ? rows : step) * f->row_bytes;
        }
        if (--sl->parts_left) continue;
        if (sl->part_failed) {
            s->failed[u] = 1;
            s->slot_of[u] = -1;
            sl->unit = -1, sl->state = SLOT_EMPTY, sl->tick = 0, sl->prefetched = false, sl->part_failed = false;
        } else {
            sl->state = SLOT_READY;
        }
        pthread_cond_broadcast(&s->ready);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the cache ---------------------------------------------------------------------------------- */

static void push(hai_stream *s, item it, bool front) {
    if (front) {
        s->q_head = (s->q_head + s->q_cap - 1) % s->q_cap;
        s->queue[s->q_head] = it;
    } else {
        s->queue[(s->q_head + s->q_len) % s->q_cap] = it;
    }
    s->q_len++;
}

/* Slot si's unit into the queue, its matrices' places in the slot set first; in order at the
 * queue's back, or at its front (then the reverse way in, so that it comes out in order). */
static void enqueue(hai_stream *s, int32_t si, bool front) {
    slot *sl = &s->slots[si];
    const hai_weight *src = &s->src[(size_t)sl->unit * s->n_parts];
    size_t at = 0;
    for (uint32_t p = 0; p < s->n_parts; p++) {
        sl->w[p] = src[p]; /* an absent matrix (no data): nothing to read */
        if (!src[p].data) continue;
        uint32_t to;
        size_t pb = placed_bytes(&src[p], &to);
        sl->w[p] = (hai_weight){to ? to : src[p].type, src[p].n_in, src[p].n_out, to ? hai_repack_row_bytes(to, src[p].n_in) : src[p].row_bytes,
                                sl->mem + at};
        at += pb;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_parts; i++) {
        uint32_t p = front ? s->n_parts - 1 - i : i, nc = n_chunks(&src[p]);
        for (uint32_t k = 0; k < nc; k++, n++) push(s, (item){si, (uint16_t)p, (uint16_t)(front ? nc - 1 - k : k)}, front);
    }
    sl->queued = sl->parts_left = n;
    if (!n) sl->state = SLOT_READY;
    for (uint32_t i = 0; i < n && i < s->n_readers; i++) pthread_cond_signal(&s->work); /* a reader an item, not all of them each time */
}

/* A slot queued for read-ahead that the forward pass now waits for: its items move to the front,
 * in their order. */
static void hurry(hai_stream *s, int32_t si) {
    uint32_t mine = 0, kept = 0;
    for (uint32_t i = 0; i < s->q_len; i++) {
        item it = s->queue[(s->q_head + i) % s->q_cap];
        if (it.slot == si)
            s->qtmp[mine++] = it;
        else
            s->queue[(s->q_head + kept++) % s->q_cap] = it;
    }
    for (uint32_t i = mine; i-- > 0;) {
        s->q_head = (s->q_head + s->q_cap - 1) % s->q_cap;
        s->queue[s->q_head] = s->qtmp[i];
    }
}

/* The group's least recently used slot that is neither pinned nor being read, given to unit u
 * and queued (urgent: at the front); -1 when there is none. A guess takes only a slot its group's
 * last turn did not use: it must not evict what the last token chose, which the next often
 * chooses again. */
static int32_t claim(hai_stream *s, uint32_t u, bool urgent, bool guess) {
    uint32_t g = u / s->group_units;
    slot *base = s->slots + (size_t)g * s->group_slots;
    int32_t best = -1;
    /* read-ahead not yet used goes last (a need takes it when nothing else is free), and never for more read-ahead */
    for (uint32_t i = 0; i < s->group_slots; i++)
        if (base[i].state != SLOT_LOADING && !base[i].pins && (urgent || !base[i].prefetched) &&
            (best < 0 || base[i].prefetched < base[best].prefetched ||
             (base[i].prefetched == base[best].prefetched && base[i].tick < base[best].tick)))
            best = (int32_t)i;
    if (best < 0 || (guess && base[best].unit >= 0 && base[best].tick >= s->turn_tick[g])) return -1;
    slot *sl = &base[best];
    if (sl->unit >= 0) s->slot_of[sl->unit] = -1;
    sl->unit = (int32_t)u, sl->state = SLOT_LOADING, sl->tick = ++s->tick, sl->prefetched = !urgent;
    int32_t si = (int32_t)(g * s->group_slots + (uint32_t)best);
    s->slot_of[u] = si;
    s->failed[u] = 0;
    enqueue(s, si, urgent);
    return si;
}

void stream_prefetch(hai_stream *s, uint32_t u, bool guess) {
    pthread_mutex_lock(&s->mu);
    if (s->slot_of[u] < 0 && claim(s, u, false, guess) >= 0) s->st.prefetches++;
    pthread_mutex_unlock(&s->mu);
}

void stream_want(hai_stream *s, uint32_t u) {
    pthread_mutex_lock(&s->mu);
    s->st.acquires++;
    uint32_t g = u / s->group_units;
    if (s->used_turn[u] && s->used_turn[u] + 1 == s->turn_no[g]) s->st.repeats++;
    s->used_turn[u] = s->turn_no[g];
    int32_t si = s->slot_of[u];
    if (si >= 0 && s->slots[si].state == SLOT_READY)
        s->st.hits++;
    else if (si >= 0)
        s->st.late++;
    else
        s->st.misses++;
    if (si >= 0 && s->slots[si].prefetched) s->st.prefetch_used++, s->slots[si].prefetched = false;
    if (si >= 0 && s->slots[si].queued)
        hurry(s, si);
    else if (si < 0)
        claim(s, u, true, false); /* none free now: stream_acquire waits for one */
    pthread_mutex_unlock(&s->mu);
}

/* Pins unit u's slot (the lock held). */
static const hai_weight *pin(hai_stream *s, int32_t si) {
    slot *sl = &s->slots[si];
    sl->pins++;
    sl->tick = ++s->tick;
    sl->prefetched = false;
    return sl->w;
}

const hai_weight *stream_take(hai_stream *s, uint32_t u) {
    pthread_mutex_lock(&s->mu);
    int32_t si = s->slot_of[u];
    const hai_weight *w = si >= 0 && s->slots[si].state == SLOT_READY ? pin(s, si) : NULL;
    pthread_mutex_unlock(&s->mu);
    return w;
}

hai_status stream_acquire(hai_stream *s, uint32_t u, const hai_weight **out, hai_error *err) {
    pthread_mutex_lock(&s->mu);
    double t0 = 0;
    int32_t si;
    for (;;) {
        si = s->slot_of[u];
        if (si >= 0 && s->slots[si].state == SLOT_READY) break;
        if (si >= 0 && s->slots[si].queued) hurry(s, si);
        if (si < 0 && s->failed[u]) { /* its read failed: reported once, the next acquire reads again */
            s->failed[u] = 0;
            hai_status st = hai_fail(err, s->io_err.status ? s->io_err.status : HAI_ERR_IO, "%s", s->io_err.msg);
            pthread_mutex_unlock(&s->mu);
            return st;
        }
        if (si < 0 && claim(s, u, true, false) >= 0) continue; /* evicted since it was wanted, or never wanted */
        if (!t0) t0 = now_s();
        pthread_cond_wait(&s->ready, &s->mu); /* being read, or every slot busy: until a read ends or a pin goes */
    }
    if (t0) s->st.wait_seconds += now_s() - t0;
    *out = pin(s, si);
    pthread_mutex_unlock(&s->mu);
    return HAI_OK;
}

void stream_release(hai_stream *s, uint32_t u) {
    pthread_mutex_lock(&s->mu);
    int32_t si = s->slot_of[u];
    if (si >= 0 && s->slots[si].pins && !--s->slots[si].pins) pthread_cond_broadcast(&s->ready);
    pthread_mutex_unlock(&s->mu);
}

void stream_turn(hai_stream *s, uint32_t group) {
    pthread_mutex_lock(&s->turn[group]);
    pthread_mutex_lock(&s->mu);
    s->turn_tick[group] = ++s->tick;
    s->turn_no[group]++;
    pthread_mutex_unlock(&s->mu);
}
void stream_turn_end(hai_stream *s, uint32_t group) { pthread_mutex_unlock(&s->turn[group]); }
int stream_mode(const hai_stream *s) { return s ? s->mode : STREAM_NONE; }
uint32_t stream_group_slots(const hai_stream *s) { return s->group_slots; }
uint32_t stream_units(const hai_stream *s) { return s->n_units; }

/* ---- start and stop ----------------------------------------------------------------------------- */

hai_status hai_stream_start(hai_model *m, const char *path, hai_error *err) {
    hai_stream *s = m->stream;
    size_t n_slots = (size_t)s->n_groups * s->group_slots;
    uint64_t region = region_bytes(n_slots * s->slot_bytes), need = region + (uint64_t)s->n_readers * s->stage_bytes;
    hai_budget *b = m->budget;
    if (b) {
        pthread_mutex_lock(&b->mu);
        bool fits = b->used + need <= b->limit;
        if (fits) b->used += need;
        pthread_mutex_unlock(&b->mu);
        if (!fits)
            return hai_fail(err, HAI_ERR_LIMIT, "model: the stream cache takes %.1f MiB; the memory budget has %.1f MiB left", mib(need),
                            mib(b->limit - b->used));
    }
    s->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    s->direct = s->fd >= 0;
    if (s->fd < 0) s->fd = open(path, O_RDONLY | O_CLOEXEC); /* a file system without O_DIRECT (tmpfs): pages dropped instead */
    if (s->fd < 0) return hai_fail(err, HAI_ERR_IO, "model: cannot open %s to stream its weights: %s", path, strerror(errno));
    s->slots = calloc(n_slots, sizeof *s->slots);
    s->turn = calloc(s->n_groups, sizeof *s->turn);
    s->turn_tick = calloc(s->n_groups, sizeof *s->turn_tick);
    s->turn_no = calloc(s->n_groups, sizeof *s->turn_no);
    s->used_turn = calloc(s->n_units, sizeof *s->used_turn);
    uint32_t most = 0; /* items of the largest unit */
    for (uint32_t u = 0; u < s->n_units; u++) {
        uint32_t k = 0;
        for (uint32_t p = 0; p < s->n_parts; p++) k += n_chunks(&s->src[(size_t)u * s->n_parts + p]);
        most = k > most ? k : most;
    }
    s->q_cap = (uint32_t)n_slots * most;
    s->queue = malloc((size_t)s->q_cap * sizeof *s->queue);
    s->qtmp = malloc((size_t)s->q_cap * sizeof *s->qtmp);
    if (region >= HUGE_FROM)
        s->mem = hai_alloc_huge(n_slots * s->slot_bytes);
    else if (posix_memalign((void **)&s->mem, IO_ALIGN, region))
        s->mem = NULL;
    if (!s->slots || !s->turn || !s->turn_tick || !s->turn_no || !s->used_turn || !s->queue || !s->qtmp || !s->mem) return hai_fail(err, HAI_ERR_NOMEM, "model: cannot allocate %.1f MiB for the stream cache", mib(need));
    memset(s->mem, 0, n_slots * s->slot_bytes); /* its pages taken now, not while tokens wait (measured: a tenth of the first steps) */
    for (size_t i = 0; i < n_slots; i++) s->slots[i] = (slot){.unit = -1, .mem = s->mem + i * s->slot_bytes};
    for (uint32_t i = 0; i < s->n_readers; i++)
        if (posix_memalign((void **)&s->stage[i], IO_ALIGN, s->stage_bytes)) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
    /* a read that O_DIRECT refuses (a file system that accepts the flag but not the I/O) */
    if (s->direct && s->n_units) {
        uint64_t at;
        const hai_weight *f = &s->src[0];
        for (uint32_t p = 0; !f->data && p + 1 < s->n_parts; p++) f++;
        size_t span = f->data ? file_span(s, f, &at) : 0;
        if (span && pread(s->fd, s->stage[0], span < IO_ALIGN ? span : IO_ALIGN, (off_t)at) < 0 && errno == EINVAL) {
            close(s->fd);
            s->direct = false;
            if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return hai_fail(err, HAI_ERR_IO, "model: cannot open %s: %s", path, strerror(errno));
        }
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->ready, NULL);
    pthread_cond_init(&s->work, NULL);
    for (uint32_t g = 0; g < s->n_groups; g++) pthread_mutex_init(&s->turn[g], NULL);
    s->started = true;
    s->st.mode = (uint32_t)s->mode, s->st.units = s->n_units, s->st.slots = (uint32_t)n_slots;
    s->st.unit_bytes = s->slot_bytes, s->st.cache_bytes = need;
    for (uint32_t i = 0; i < s->n_readers; i++) {
        reader_arg *a = malloc(sizeof *a);
        if (!a) return hai_fail(err, HAI_ERR_NOMEM, "model: out of memory");
        *a = (reader_arg){s, i};
        if (pthread_create(&s->readers[i], NULL, reader, a)) {
            free(a);
            s->n_readers = i;
            return hai_fail(err, HAI_ERR_INTERNAL, "model: cannot start a thread to read the weights");
        }
    }
    return HAI_OK;
}

void hai_stream_free(hai_stream *s) {
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->work);
        pthread_mutex_unlock(&s->mu);
        for (uint32_t i = 0; i < s->n_readers; i++) pthread_join(s->readers[i], NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->ready);
        pthread_cond_destroy(&s->work);
        for (uint32_t g = 0; g < s->n_groups; g++) pthread_mutex_destroy(&s->turn[g]);
    }
    if (s->fd >= 0) close(s->fd);
    for (uint32_t i = 0; i < N_READERS; i++) free(s->stage[i]);
    free(s->mem), free(s->slots), free(s->turn), free(s->turn_tick), free(s->turn_no), free(s->used_turn), free(s->queue), free(s->qtmp), free(s->src), free(s->slot_of), free(s->failed);
    free(s);
}

bool hai_model_stream_stats(const hai_model *m, hai_stream_stats *out) {
    hai_stream *s = m->stream;
    memset(out, 0, sizeof *out);
    if (!s || !s->started) return false;
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
    return true;
}

const char *hai_model_weights_text(const hai_model *m, char *buf, size_t n) {
    hai_stream_stats s;
    uint64_t w = hai_model_weights_bytes(m);
    if (!hai_model_stream_stats(m, &s))
        snprintf(buf, n, "weights %.1f MiB", mib(w));
    else
        snprintf(buf, n, "weights %.1f MiB held + %.1f MiB streamed (%s) through a %.1f MiB cache", mib(w - s.streamed_bytes),
                 mib(s.streamed_bytes), s.mode == STREAM_EXPERTS ? "experts" : "layers", mib(s.cache_bytes));
    return buf;
}

void hai_model_stream_reset(hai_model *m) {
    hai_stream *s = m->stream;
    if (!s || !s->started) return;
    pthread_mutex_lock(&s->mu);
    hai_stream_stats keep = s->st;
    memset(&s->st, 0, sizeof s->st);
    s->st.mode = keep.mode, s->st.units = keep.units, s->st.slots = keep.slots, s->st.unit_bytes = keep.unit_bytes;
    s->st.cache_bytes = keep.cache_bytes, s->st.streamed_bytes = keep.streamed_bytes;
    pthread_mutex_unlock(&s->mu);
}
