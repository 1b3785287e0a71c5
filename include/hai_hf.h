/* hai_hf: tokenizers from Hugging Face's tokenizer.json (libhai_hf; it adds cJSON's parse of the
 * file and utf8proc, for the normalizers, to libhai's dependencies). Conventions are hai.h's. */
#ifndef HAI_HF_H
#define HAI_HF_H

#include "hai.h"

#ifdef __cplusplus
extern "C" {
#endif

/* From a Hugging Face tokenizer.json and (optional, may be NULL) tokenizer_config.json. */
hai_status hai_tokenizer_from_hf(const char *tokenizer_json, const char *config_json, hai_tokenizer **out, hai_error *err);
/* The same from the files' text in memory (config may be NULL). */
hai_status hai_tokenizer_from_hf_text(const char *json, size_t len, const char *config, size_t config_len, hai_tokenizer **out,
                                      hai_error *err);

#ifdef __cplusplus
}
#endif

#endif
