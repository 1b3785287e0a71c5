#!/usr/bin/env bash
# The server path as apps see it, side by side with llama-server on the same file: a 0.5B model of
# Qwen2's geometry with the real 151,936-token Qwen vocabulary (random weights, Q8_0; generated
# here by hai synth), streamed chat completions of 256 tokens with OpenAI's default sampling
# (temperature 1, top_p 1), one client and then 2 and 4 at once (bench/serve.mjs): decode tok/s per
# stream and in aggregate, time to first token, inter-token latency p50/p95.
# llama-server is not built here (nothing of llama.cpp is in this project): point LLAMA_SERVER at a
# binary built outside it; without one the comparison is skipped, and the script says so.
# Environment: THREADS (2), SLOTS (4), MODEL (a GGUF to use instead), LLAMA_SERVER, BENCH_DIR
# (build/bench), HAI_SHARED_DIR (../shared).
source "$(dirname "$0")/common.sh"
slots=${SLOTS:-4}
model=$(qwen05_model)
port=$((20000 + RANDOM % 20000))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "| server | clients | decode tok/s per stream | aggregate tok/s | TTFT ms p50 | inter-token ms p50 | p95 |"
echo "|---|---|---|---|---|---|---|"
./build/hai serve -m "$model" --port "$port" -t "$threads" --parallel "$slots" --ctx 1024 2>"$dir/serve-hai.log" &
pids+=($!)
wait_up "$port" || { cat "$dir/serve-hai.log"; exit 1; }
node bench/serve.mjs "http://127.0.0.1:$port" --clients 1,2,4 --label hai
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true
if [ -n "${LLAMA_SERVER:-}" ] && [ -x "$LLAMA_SERVER" ]; then
  port=$((port + 1))
  "$LLAMA_SERVER" -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" -np "$slots" -c $((1024 * slots)) >"$dir/serve-llama.log" 2>&1 &
  pids+=($!)
  wait_up "$port" || { tail -20 "$dir/serve-llama.log"; exit 1; }
  node bench/serve.mjs "http://127.0.0.1:$port" --clients 1,2,4 --label llama-server
else
  echo "(llama-server: skipped - set LLAMA_SERVER to a llama-server binary built outside the project to compare)"
fi
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads"
