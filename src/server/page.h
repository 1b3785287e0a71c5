/* The chat page hai serve shows at / (src/server/page/, compiled in by cmake/embed.cmake). */
#ifndef HAI_SERVER_PAGE_H
#define HAI_SERVER_PAGE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct page_asset {
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} page_asset;

/* The asset served at url ("/", "/chat.js", "/chat.css"), if it is one. */
bool page_find(const char *url, page_asset *out);

/* The headers every page response carries: the page loads nothing but its own files, runs no
 * inline script, cannot be framed, and sends no referrer. */
#define PAGE_CSP                                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "      \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#endif
