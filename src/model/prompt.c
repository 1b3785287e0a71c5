/* From a conversation to prompt tokens: the model's chat format, its BOS/EOS texts, tokenized
 * with the template's special tokens parsed and the messages' text as plain text. Shared by
 * `hai run --chat`, `hai chat`, the router and the server. */
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "base/error.h"
#include "model.h"
#include "tokenizer/tokenizer.h"

static char *token_text(const hai_tokenizer *t, hai_special_token which) {
    hai_token id = hai_tokenizer_special(t, which);
    size_t len;
    const char *s = id >= 0 ? hai_tokenizer_text(t, id, &len) : NULL;
    if (!s) return strdup("");
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

hai_status hai_chat_tokenize(const hai_model *m, const hai_chat_params *pp, const hai_chat_message *msgs, size_t n,
                             hai_token **ids, size_t *n_ids, hai_error *err) {
    if (!m || !ids || !n_ids) return hai_fail(err, HAI_ERR_INVALID, "chat: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    const hai_tokenizer *t = m->tok;
    hai_chat_params p = pp ? *pp : hai_chat_default_params();
    if (!p.template_text) p.template_text = hai_tokenizer_chat_template(t);
    char *bos = token_text(t, HAI_SPECIAL_BOS), *eos = token_text(t, HAI_SPECIAL_EOS);
    if (!bos || !eos) {
        free(bos), free(eos);
        return hai_fail(err, HAI_ERR_NOMEM, "chat: out of memory");
    }
    if (!p.bos_token) p.bos_token = bos;
    if (!p.eos_token) p.eos_token = eos;
    char *text = NULL;
    size_t len = 0, (*data)[2] = NULL, n_data = 0;
    hai_status st = chat_format_marked(&p, msgs, n, &text, &len, &data, &n_data, err);
    /* the template decides about BOS when it writes one; otherwise the vocabulary does */
    bool template_bos = p.template_text && strstr(p.template_text, "bos_token");
    uint32_t flags = HAI_TOKENIZE_PARSE_SPECIAL | (template_bos ? 0 : HAI_TOKENIZE_ADD_SPECIAL);
    hai_token *out = NULL;
    /* the template's markup gives control tokens; the messages' text never does (chat.h); one
     * slot before the ids for a BOS */
    if (!st) st = tok_tokenize_marked_alloc(t, text, len, flags & ~HAI_TOKENIZE_ADD_SPECIAL, (const size_t(*)[2])data, n_data, 1, &out, n_ids, err);
    if (!st) {
        /* BOS only (an EOS at the end of a prompt would end the answer before it starts) */
        hai_token b = hai_tokenizer_special(t, HAI_SPECIAL_BOS);
        bool add = (flags & HAI_TOKENIZE_ADD_SPECIAL) && b >= 0 && hai_tokenizer_add_bos(t);
        if (add) {
            out[0] = b;
            (*n_ids)++;
        } else {
            memmove(out, out + 1, *n_ids * sizeof *out);
        }
        *ids = out;
        out = NULL;
    }
    free(out);
    free(data);
    hai_free(text);
    free(bos);
    free(eos);
    return st;
}
