/* A growable text (or byte) buffer: the one used wherever hai builds a string of unknown length
 * (JSON, GBNF, metrics, prompts, GGUF headers). It stays NUL-terminated after every append.
 * After an allocation fails nothing more is appended and oom stays set, so a caller builds the
 * whole text and checks once at the end. */
#ifndef HAI_BASE_TEXT_H
#define HAI_BASE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hai_text {
    char *p; /* NULL until something is appended */
    size_t n, cap;
    bool oom;
} hai_text;

bool text_put(hai_text *t, const void *s, size_t n);
bool text_puts(hai_text *t, const char *s);
bool text_printf(hai_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text, now the caller's (malloc'd; "" when empty), or NULL after a failed allocation. */
char *text_take(hai_text *t);
void text_free(hai_text *t);

#endif
