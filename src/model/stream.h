/* Weights read from the model file as the forward pass needs them (hai_model_params.stream), for
 * models larger than the memory they may use.
 *
 * A unit is a set of matrices needed together: one expert of one layer (its gate, up and down) in
 * a mixture of experts, or one whole layer of a dense model. Units are read into slots, places of
 * the largest unit's size in one region; slots are grouped (a layer's experts: a group of their
 * own, so one layer's reads never evict another's; the dense layers: one group) and a group's
 * least recently used slot takes the next unit. Reads bypass the page cache (O_DIRECT, or the
 * pages dropped after each read where the file system refuses it), so the memory in use is the
 * cache and nothing else, and the figures measure the storage, not RAM.
 *
 * Reading threads take requests from a queue: demand reads (the forward pass waits for them)
 * before read-ahead. A unit in use is pinned; a group's units are used by one forward pass at a
 * time (stream_turn), so contexts that share the model cannot pin a group's slots between them
 * and wait on each other. */
#ifndef HAI_STREAM_H
#define HAI_STREAM_H

#include "model/model.h"

enum { STREAM_NONE = 0, STREAM_EXPERTS = 1, STREAM_LAYERS = 2 };
#define STREAM_MAX_PARTS 8 /* matrices of a unit: a layer's q, k, v, o, gate, up, down */

/* Chooses what streams (after the tensors are known, before the weights are placed): sets
 * m->stream (NULL: nothing streams) and marks the streamed weights in the model (data NULL, type
 * and row size as placed), keeping their file views. Counts what stays resident against the
 * budget. */
hai_status hai_stream_plan(hai_model *m, const hai_model_params *p, hai_error *err);
/* Opens the file for reading and starts the reading threads; the cache counted against the
 * budget. */
hai_status hai_stream_start(hai_model *m, const char *path, hai_error *err);
void hai_stream_free(hai_stream *s);

int stream_mode(const hai_stream *s);
uint32_t stream_group_slots(const hai_stream *s); /* slots of a group */
uint32_t stream_units(const hai_stream *s);

/* The forward pass needs unit u now: counted (hit, late, miss) and, when it is not in memory,
 * read before any read-ahead. */
void stream_want(hai_stream *s, uint32_t u);
/* Unit u's matrices pinned (as stream_acquire) when they are in memory; NULL when they are not
 * (stream_acquire would wait), nothing pinned then. */
const hai_weight *stream_take(hai_stream *s, uint32_t u);
/* Unit u's matrices as placed in its slot (*out): waits until they are read; pinned until
 * stream_release. HAI_ERR_IO when the file could not be read. */
hai_status stream_acquire(hai_stream *s, uint32_t u, const hai_weight **out, hai_error *err);
void stream_release(hai_stream *s, uint32_t u);
/* Read unit u ahead if it is not in memory and its group has a slot to spare (best effort). A
 * guess (a predicted expert) does not evict what the group's last pass used; a unit that will be
 * needed for sure (the next layer, a prompt's next expert) takes the least recently used. */
void stream_prefetch(hai_stream *s, uint32_t u, bool guess);
/* A group's units are used by one forward pass at a time. */
void stream_turn(hai_stream *s, uint32_t group);
void stream_turn_end(hai_stream *s, uint32_t group);

#endif
