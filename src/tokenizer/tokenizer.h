/* Internal shape of a tokenizer, shared by the loaders (GGUF, tokenizer.json) and the two
 * algorithms (SentencePiece-style merges by score, byte-level BPE merges by rank). */
#ifndef HAI_TOKENIZER_H
#define HAI_TOKENIZER_H

#include "hai.h"

typedef enum tok_model { TOK_SPM, TOK_BPE } tok_model;

#define TOK_LSTRIP 1u /* a special token that swallows whitespace to its left */
#define TOK_RSTRIP 2u /* ... and to its right */

typedef struct tok_entry {
    uint64_t off;  /* into pool */
    uint32_t len;
    float score;
    uint8_t attr;  /* hai_token_attr */
    uint8_t flags; /* TOK_LSTRIP | TOK_RSTRIP */
} tok_entry;

#define TOK_MAX_REGEX 8

/* How a pre-tokenizer regex cuts (tokenizer.json's Split behaviors): the matches and the gaps
 * between them each a piece (isolated), the matches dropped (removed), each match joined to the
 * piece before it or to the one after it, or runs of adjacent matches joined (contiguous). */
typedef enum tok_split { TOK_SPLIT_ISOLATED, TOK_SPLIT_REMOVED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS } tok_split;

/* A tokenizer.json normalizer (libhai_hf): text of one stretch between added tokens (first: it
 * starts the input) into *out (malloc'd, the caller frees), before the pre-tokenizer sees it. */
typedef hai_status (*tok_normalize_fn)(const void *norm, const char *text, size_t len, bool first, char **out, size_t *out_len,
                                       hai_error *err);

struct hai_tokenizer {
    tok_model model;
    char pre_name[64];
    int32_t n_vocab;
    tok_entry *tok; /* [n_vocab] */
    char *pool;     /* token texts, back to back */
    size_t pool_size, pool_cap;

    /* exact text -> id (open addressing; -1 = empty) */
    int32_t *map;
    uint64_t map_mask;

    /* BPE merges: (left id, right id) -> rank and merged id */
    uint64_t *merge_key; /* left << 32 | right; UINT64_MAX = empty */
    int32_t *merge_rank, *merge_result;
    uint64_t merge_mask;
    int64_t n_merges;

    hai_token special[HAI_SPECIAL_COUNT];
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    /* BPE over characters, not bytes (tokenizer.json's SentencePiece-converted BPE): a character
     * that is no token becomes its bytes' <0xXX> tokens (byte_fallback) or <unk>; its pieces
     * decode as SentencePiece's do */
    bool bpe_chars, byte_fallback, fuse_unk;
    bool strip_leading_space; /* detokenize drops the space the first text starts with (set at load: add_space_prefix; tokenizer.json's Strip decoder) */
    tok_normalize_fn normalize;
    void *norm;
    void (*norm_free)(void *);
    hai_token byte_tok[256]; /* SPM: <0xXX>; BPE: the one-character token for the byte */
    uint8_t *eog;            /* [n_vocab] end-of-generation flags */
    hai_token *specials;     /* tokens matched whole in text, longest first */
    int32_t n_specials;
    /* the same by first byte: specials starting with byte c are sp_all[sp_start_all[c] ..
     * sp_start_all[c+1]), longest first; sp_ud holds the user-defined ones only */
    hai_token *sp_all, *sp_ud;
    int32_t sp_start_all[257], sp_start_ud[257];
    bool spm_split_words;

    void *regex[TOK_MAX_REGEX]; /* pcre2_code*: the pre-tokenizer, applied in order */
    uint8_t regex_split[TOK_MAX_REGEX]; /* tok_split of each */
    bool regex_invert[TOK_MAX_REGEX];   /* the gaps are what the behavior applies to, not the matches */
    int n_regex;

    char *chat_template;
    size_t max_piece;
    struct gtrie *gtrie; /* the vocabulary as a byte trie, built on the first grammar (grammar/mask.c) */
};

/* What a tokenizer holds in memory (its tables; not a grammar's trie, built later): counted
 * against a model's memory budget. */
size_t tok_memory_bytes(const hai_tokenizer *t);

struct gtrie;
void gtrie_free(struct gtrie *t);

/* Building: alloc, then set every id, add merges, then finish. */
hai_status tok_alloc(hai_tokenizer **out, tok_model model, int32_t n_vocab, hai_error *err);
hai_status tok_set(hai_tokenizer *t, int32_t id, const char *text, size_t len, float score, int attr, hai_error *err);
hai_status tok_build_map(hai_tokenizer *t, hai_error *err); /* after every tok_set */
hai_status tok_alloc_merges(hai_tokenizer *t, int64_t n, hai_error *err); /* before tok_add_merge */
/* Adds merge "a b" with the given rank; silently ignored when a, b or a+b is not a token. */
hai_status tok_add_merge(hai_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen, int32_t rank,
                         hai_error *err);
/* Builds the lookup tables, byte tokens, special-token list, EOG set; compiles the
 * pre-tokenizer (by name, or the given patterns when n_patterns > 0). */
hai_status tok_finish(hai_tokenizer *t, const char *const *patterns, int n_patterns, hai_error *err);

int32_t tok_lookup(const hai_tokenizer *t, const char *text, size_t len);
int32_t tok_merge_rank(const hai_tokenizer *t, int32_t left, int32_t right, int32_t *result);

/* A growable array of token ids used while tokenizing. */
typedef struct tok_vec {
    hai_token *v;
    size_t n, cap;
    bool oom;
} tok_vec;

void tok_vec_push(tok_vec *o, hai_token id);

/* True when s has a U+2581 space mark right after a character that is not one. */
bool tok_spm_mark_after_text(const char *s, size_t n);

/* The algorithms: append the tokens of one stretch of plain text (no special tokens in it). */
void tok_spm_encode(const hai_tokenizer *t, const char *text, size_t len, tok_vec *out);
hai_status tok_bpe_encode(const hai_tokenizer *t, const char *text, size_t len, tok_vec *out, hai_error *err);

/* hai_tokenize, except that with HAI_TOKENIZE_PARSE_SPECIAL no control token is recognized where
 * it would overlap one of the plain [start, end) byte ranges (in order, not overlapping): a chat
 * prompt's data (chat.h). Outside them, and for text without special tokens, the ids are
 * hai_tokenize's. */
hai_status tok_tokenize_marked(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, const size_t (*plain)[2],
                               size_t n_plain, hai_token *ids, size_t cap, size_t *n_ids, hai_error *err);
/* The same into an array it allocates, `room` free slots before the first id (for a BOS the
 * caller may put there): *ids (free()) holds room + *n_ids slots. */
hai_status tok_tokenize_marked_alloc(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, const size_t (*plain)[2],
                                     size_t n_plain, size_t room, hai_token **ids, size_t *n_ids, hai_error *err);

/* Pre-tokenizer regexes by tokenizer.ggml.pre name; NULL-terminated list, or NULL if unknown. */
const char *const *tok_pretok_patterns(const char *pre);
hai_status tok_compile_regex(hai_tokenizer *t, const char *const *patterns, int n, hai_error *err);
void tok_free_regex(hai_tokenizer *t);

#endif
