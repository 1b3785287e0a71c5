/* Internal helpers shared by the GGUF reader and writer (the public API is in hai.h). */
#ifndef HAI_GGUF_H
#define HAI_GGUF_H

#include "hai.h"

/* Bytes of a scalar GGUF value type in a file (1, 2, 4 or 8); 0 for string, array or unknown. */
uint64_t hai_gguf_scalar_size(uint32_t type);

/* Widens the little-endian scalar of type `type` at p into v. */
void hai_gguf_scalar_load(hai_gguf_value *v, uint32_t type, const void *p);

#endif
