/* POST /v1/embeddings (OpenAI's shape): input as a string, an array of strings, token ids or arrays
 * of them; encoding_format float or base64; dimensions only as the model gives them. The inputs are
 * tokenized by the request's thread, then embedded by hai_embed_batch (the model's pooling) on a
 * context of the embedder's own, four inputs a forward pass (a sequence each); requests take turns
 * on that context. */
#ifndef HAI_SERVER_EMBEDDINGS_H
#define HAI_SERVER_EMBEDDINGS_H

#include <stddef.h>

#include "hai.h"

typedef struct srv_embedder srv_embedder;

/* The context is made at the first request (4 sequences of n_ctx positions, n_threads threads). */
srv_embedder *srv_embedder_new(const hai_model *m, uint32_t n_ctx, int n_threads);
void srv_embedder_free(srv_embedder *e);

/* The response body (malloc'd JSON: the list, or an error) for a request body; *status its HTTP status. */
char *srv_embeddings(srv_embedder *e, const char *model_id, const char *body, size_t len, int *status);

#endif
