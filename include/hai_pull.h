/* hai_pull: models from the network - a GGUF downloaded with progress and resume, checked (size,
 * SHA-256) and renamed into place only when whole, and a catalog of models a device may choose
 * from by the memory it has. Part of libhai_hybrid (the code that talks to remote services:
 * libcurl, and OpenSSL's libcrypto for SHA-256). Conventions are hai.h's. */
#ifndef HAI_PULL_H
#define HAI_PULL_H

#include "hai.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hai_pull_params {
    size_t size;             /* sizeof(hai_pull_params) */
    const char *url;         /* http://, https:// or file:// (redirects followed, 5 at most) */
    const char *dest;        /* the file it becomes; the download goes to dest + ".part" */
    uint64_t expect_size;    /* bytes; 0 = not known (then at most 256 GiB are taken) */
    const char *sha256;      /* 64 hex digits, or NULL: not checked */
    hai_progress_fn progress; /* bytes done of total (0: not known); may be NULL */
    void *progress_user;
    double connect_timeout_s; /* 0 = 30 */
    double stall_timeout_s;   /* no byte for this long ends the attempt; 0 = 60 */
} hai_pull_params;

/* Downloads url to dest. A dest.part left by an interrupted download is resumed (HTTP Range; a
 * server that answers with the whole file starts it over). Only a file of the expected size and
 * hash is renamed to dest: a hash or size that does not match removes dest.part (its bytes cannot
 * be trusted to resume from) and is HAI_ERR_FORMAT; an interruption keeps it and is HAI_ERR_IO
 * ("run again to resume"). */
hai_status hai_pull(const hai_pull_params *p, hai_error *err);

/* A catalog: a JSON array of {"name", "url", "size", "sha256", "memory"} - memory the bytes the
 * model needs to run (weights, a context and scratch), size and sha256 the file's. */
typedef struct hai_catalog_entry {
    char name[64];
    char url[2048];
    char sha256[65];
    uint64_t size, memory;
} hai_catalog_entry;

/* Whether c may be in a model's name, which names its file in the store: letters, digits, '-',
 * '_' and '.' (a name does not start with '.'). */
bool hai_model_name_char(char c);

/* *entries malloc'd (free with hai_free); unknown keys and wrong types are errors naming them. */
hai_status hai_catalog_load(const char *path, hai_catalog_entry **entries, size_t *n, hai_error *err);
/* The same from the catalog's text (len bytes). */
hai_status hai_catalog_parse(const char *json, size_t len, hai_catalog_entry **entries, size_t *n, hai_error *err);
/* The largest entry (by memory) that needs no more than budget bytes; -1 when none does. */
int hai_catalog_pick(const hai_catalog_entry *entries, size_t n, uint64_t budget);

#ifdef __cplusplus
}
#endif

#endif
