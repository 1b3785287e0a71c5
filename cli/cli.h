/* Shared helpers of the hai command-line program: argument parsing and human-readable sizes. */
#ifndef HAI_CLI_H
#define HAI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <stdio.h>

#include "hai.h"
#include "hai_pull.h"

int cmd_info(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_chat_format(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_route(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_pull(int argc, char **argv);

/* The model store (dir, else $HAI_MODELS, else ~/.cache/hai/models) and the catalog (path, else
 * $HAI_CATALOG, else ~/.config/hai/catalog.json), into buf when made up. */
const char *cli_model_dir(const char *dir, char *buf, size_t cap);
const char *cli_catalog_path(const char *path, char *buf, size_t cap);
/* e into dir (as NAME.gguf, made if missing), its path into path; 0 or 1 after an error message. */
int cli_pull_model(const hai_catalog_entry *e, const char *dir, char *path, size_t cap);

/* A tokenizer from a GGUF file or (when tok_json is set) a tokenizer.json; NULL + err on failure. */
hai_tokenizer *cli_load_tokenizer(const char *model, const char *tok_json, hai_error *err);

/* Parses a whole decimal number in [lo, hi]; prints an error naming the option and returns false
 * otherwise. */
bool cli_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
bool cli_parse_f64(const char *opt, const char *s, double *out);
/* --kv-type: f16, q8_0 or q4_0 (any case) into a type id; prints an error otherwise. */
bool cli_parse_kv_type(const char *opt, const char *s, uint32_t *out);
/* --stream auto|on|off */
bool cli_parse_stream(const char *opt, const char *s, hai_stream_mode *out);
/* "weights 9.1 MiB", or what is held and what streams through what cache. */
/* One line of what streaming did (nothing when the model streams nothing), bytes a token over `tokens`. */
void cli_stream_report(const hai_model *m, double tokens, FILE *f);
/* A size in bytes: a number with an optional K, M, G or T (powers of 1024; "KiB", "MB" and the
 * like mean the same), "1.5G"; prints an error naming the option and returns false otherwise. */
bool cli_parse_size(const char *opt, const char *s, uint64_t *out);

/* The value of an option that takes one: argv[*i + 1], advancing *i; NULL (after an error
 * message) when it is missing. */
const char *cli_value(int argc, char **argv, int *i);

/* "1.5 MiB" style; returns buf. */
const char *cli_bytes(uint64_t n, char *buf, int cap);
/* "1.10 B", "2.36 M" style; returns buf. */
const char *cli_count(int64_t n, char *buf, int cap);

/* What a --mem-budget of the whole run leaves the model and its contexts: the command's own
 * allocations (the sampler's passes over the vocabulary, text buffers, the threads' stacks) take
 * CLI_BUDGET_RESERVE of it. */
#define CLI_BUDGET_RESERVE (4ull << 20)

/* Token ids written as text: whole numbers separated by white space or commas, each a token of a
 * vocabulary of n_vocab. *ids is malloc'd. On bad input prints "hai <cmd>: <what>: ..." and
 * returns false. */
bool cli_parse_ids(const char *cmd, const char *what, const char *text, int32_t n_vocab, hai_token **ids, size_t *n);

/* Fills err (when given) with status and the message; returns status. */
hai_status cli_fail(hai_error *err, hai_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prints "hai <cmd>: <message>" to stderr. */
void cli_error(const char *cmd, const hai_error *err);

/* All of a stream / a file, NUL-terminated (len, if given, gets the byte count); NULL when it
 * cannot be read or memory runs out. */
char *cli_read_stream(FILE *f, size_t *len);
char *cli_read_file(const char *path, size_t *len);

#endif
