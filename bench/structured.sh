#!/usr/bin/env bash
# Structured outputs: what constrained decoding costs. First the mask per token on the real
# 151,936-token Qwen vocabulary over a set of schemas (bench_grammar: cold grammars, and warm ones
# as hai serve keeps them), then decode tok/s through hai serve with and without response_format
# on a 0.5B model of Qwen2's geometry with that vocabulary (random weights, Q8_0; the same file
# bench/serve.sh makes), OpenAI's default sampling, interleaved requests (bench/structured.mjs).
# With LLAMA_SERVER naming a llama-server binary built outside the project, the same requests
# against it on the same file, for the comparison (skipped, and said so, without one).
# Environment: THREADS (2), MODEL (a GGUF to use instead), LLAMA_SERVER, BENCH_DIR (build/bench),
# HAI_SHARED_DIR.
source "$(dirname "$0")/common.sh"
echo "== the mask per token ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
./build/bench_grammar "$shared/vocab/ggml-vocab-qwen2.gguf" "${OUTPUTS:-10}"
model=$(qwen05_model)
port=$((20000 + RANDOM % 20000))
start_server "$port" "$dir/serve-structured.log" ./build/hai serve -m "$model" --port "$port" -t "$threads" --parallel 1 --ctx 1024
echo
echo "== decode through hai serve, with and without response_format (streamed, temperature 1, top_p 1)"
node bench/structured.mjs "http://127.0.0.1:$port" --tokens "${TOKENS:-256}" --rounds "${ROUNDS:-4}"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
if [ -n "${LLAMA_SERVER:-}" ] && [ -x "$LLAMA_SERVER" ]; then
  port=$((port + 1))
  start_server "$port" "$dir/serve-structured-llama.log" "$LLAMA_SERVER" -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" -np 1 -c 1024
  echo
  echo "== the same against llama-server"
  node bench/structured.mjs "http://127.0.0.1:$port" --tokens "${TOKENS:-256}" --rounds "${ROUNDS:-4}"
else
  echo "(llama-server: skipped - set LLAMA_SERVER to a llama-server binary built outside the project to compare)"
fi
