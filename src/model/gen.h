/* One sequence's generation, a token at a time: what hai_generate does between forward passes
 * (pick the next token, end-of-generation and stop strings, whole UTF-8 characters out, the
 * entropy signal, the finish reason), as a state the caller steps. hai_generate steps it on one
 * sequence; the server's engine steps one per slot over a batched forward pass. */
#ifndef HAI_GEN_H
#define HAI_GEN_H

#include "hai.h"
#include "base/text.h"


typedef struct gen_state {
    const hai_tokenizer *tok;
    const hai_generate_params *p;
    hai_generate_result *res;
    hai_detok_stream ds;
    hai_text h;      /* text produced but not yet passed on: it might start a stop string */
    char *piece;
    size_t cap;
    hai_text said;   /* the output so far, while a grammar waits for its trigger */
    char *tpiece;    /* a drawn token's bytes, checked for a trigger before it is taken */
    bool gram_on;    /* the grammar constrains the output (from the start, or since a trigger) */
    int32_t ent_n, ent_k;
    double ent_sum, t_begin, t_first;
} gen_state;

/* Starts a generation after a prompt (its tokens go to the sampler's penalty window). res is
 * filled as it goes (n_generated, finish, mean_entropy, the first-token time). */
hai_status gen_begin(gen_state *g, const hai_tokenizer *tok, const hai_token *prompt, size_t n_prompt, const hai_generate_params *p,
                     hai_generate_result *res, hai_error *err);
/* One step, from the logits of the sequence's last position (masked in place when there is a
 * grammar); room: the positions its context has left for more tokens. true: *next is to be fed and stepped on; false: the generation
 * ended (res->finish says why; *st holds an error, if that was the reason). */
bool gen_step(gen_state *g, float *logits, int32_t n_vocab, int64_t room, hai_token *next, hai_status *st, hai_error *err);
/* Ends it: text still held back is passed on unless it was cancelled or failed (st); frees. */
void gen_end(gen_state *g, hai_status st);

/* Speculative decoding (hai_generate, the server's slots): how many tokens to draft a pass. The
 * length follows what was kept (all kept: two more, up to kmax; else one past what was), and a
 * pass that kept nothing pauses drafting for 1, 2, 4 ... 64 tokens (back to none at the first
 * kept draft). A draft model is switched off for the rest of the text after GEN_DRAFT_MODEL_MISSES
 * such passes in a row: each pass after a pause first has it read every token of the pause, which
 * alone costs a tenth of the model's decode when a Q4_0 copy drafts for Q8_0 - a draft model that
 * does not agree never pays. Prompt lookup drafts only where the text repeats, at no cost. Where
 * the caller times its passes, a drafted pass also counts as keeping nothing while drafted passes
 * have so far given tokens more slowly than plain ones (both measured: a draft model that agrees
 * a fifth of the time keeps something most passes, and still costs more than it gives). */
#define GEN_DRAFT_MODEL_MISSES 3
typedef struct gen_draft {
    int kmax, kcur, pause, backoff, misses;
    bool model;
    double t_drafted, t_plain;     /* seconds of drafted passes (drafting included) and of plain ones */
    int64_t n_drafted, n_plain;    /* the tokens they gave */
} gen_draft;
void gen_draft_begin(gen_draft *d, int kmax, bool model);
int gen_draft_len(gen_draft *d);                    /* this pass's drafts at most (0: none); counts a paused pass */
/* nd drafted; taken rows stepped (the fed token and the drafts kept); seconds the pass took, < 0
 * when not timed (the server's passes serve several slots) */
void gen_draft_done(gen_draft *d, int nd, int taken, double seconds);
/* Prompt lookup over the text a[0..na) followed by next (the cache and the token about to be fed,
 * read where they are): the tokens that followed the latest earlier place where the text ends the
 * same way (its last 3 tokens, else 2, else 1), at most k of them, into d; returns how many. */
int gen_lookup(const hai_token *a, size_t na, hai_token next, int k, hai_token *d);

/* Whether a draw is from the (penalized, biased) logits as they are, with no cut (greedy, or no
 * top-k / top-p / min-p): then a draw that a grammar allows is distributed exactly as a draw from
 * the masked logits (p(t) + (1 - Z) p(t) / Z = p(t) / Z), so the mask is needed only on a miss. */
bool sampler_is_plain(const hai_sampler *s);

/* Context shift for a prompt that, after the cached prefix it shares with sequence seq (common
 * tokens), goes on (16 tokens or more) with text the cache holds further on - a conversation whose
 * older turns were dropped to fit: the span between leaves the cache and what follows moves down
 * over it (hai_seq_shift), so it is not read again. Returns how much of the prompt the sequence now
 * holds. hai_generate (with hai_context_set_shift) and the server's slots (--context-shift). */
uint32_t seq_shift_to_prompt(hai_context *c, int32_t seq, const hai_token *prompt, size_t n_prompt, uint32_t common);

#endif
