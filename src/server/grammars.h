/* Compiled grammars kept between requests: an app sends the same schema again and again, and a
 * grammar's mask caches (the vocabulary walks, milliseconds each) are worth more than its
 * compilation. A request takes a grammar made from the same GBNF text if one is idle (reset to
 * its start), else compiles one; it gives it back when its output is done. */
#ifndef HAI_SERVER_GRAMMARS_H
#define HAI_SERVER_GRAMMARS_H

#include "hai.h"

typedef struct grammar_pool grammar_pool;

grammar_pool *gpool_new(const hai_tokenizer *tok, int max_idle);
void gpool_free(grammar_pool *p);
/* A grammar for GBNF text: an idle one of the same text, or a new one (errors as hai_grammar_create). */
hai_status gpool_take(grammar_pool *p, const char *text, hai_grammar **g, hai_error *err);
/* Gives g (made from text) back; the least recently used idle grammar goes when there are too many. */
void gpool_give(grammar_pool *p, const char *text, hai_grammar *g);

#endif
