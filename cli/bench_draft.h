/* hai bench's speculative-decoding tests (bench_draft.c). */
#ifndef HAI_CLI_BENCH_DRAFT_H
#define HAI_CLI_BENCH_DRAFT_H

#include "cli.h"

/* The cost of checking k drafted tokens, k = 1, 2, 3, 4, 6, 8, 12, 16 up to kmax: one pass of
 * k + 1 tokens (every row's logits) after depth tokens of toks, median of reps, in decode steps
 * of step_s. c needs n_draft >= kmax. */
hai_status bench_verify(hai_context *c, const hai_token *toks, uint32_t depth, int kmax, int reps, double step_s, bool json,
                        hai_error *err);

/* n_gen greedy tokens after prompt, plain and drafted in turns, reps times: prompt lookup of up to
 * draft_n tokens, or the draft model's context dc; an error when the texts differ. */
hai_status bench_drafted(hai_context *c, hai_context *dc, const hai_token *prompt, size_t n_prompt, int n_gen, int draft_n, int reps,
                         const char *label, bool json, hai_error *err);

#endif
