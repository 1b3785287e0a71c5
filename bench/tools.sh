#!/usr/bin/env bash
# Tool calls: decode tok/s through hai serve with tools (tool_choice required: the calls' grammar
# from the first token; auto: free text, the grammar waiting for a call's marker) against the same
# requests without tools, on a 0.5B model of Qwen2's geometry with the Qwen vocabulary and its
# chat template (random weights, Q8_0; the file bench/serve.sh makes), OpenAI's default sampling,
# interleaved requests (bench/tools.mjs). With LLAMA_SERVER naming a llama-server binary built
# outside the project, the same requests against it (--jinja) on the same file.
# Environment: THREADS (2), MODEL, LLAMA_SERVER, BENCH_DIR (build/bench), HAI_SHARED_DIR, TOKENS, ROUNDS.
source "$(dirname "$0")/common.sh"
model=$(qwen05_model)
port=$((20000 + RANDOM % 20000))
start_server "$port" "$dir/serve-tools.log" ./build/hai serve -m "$model" --port "$port" -t "$threads" --parallel 1 --ctx 2048
echo "== tool calls through hai serve ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads; streamed, temperature 1, top_p 1)"
node bench/tools.mjs "http://127.0.0.1:$port" --tokens "${TOKENS:-256}" --rounds "${ROUNDS:-4}"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
if [ -n "${LLAMA_SERVER:-}" ] && [ -x "$LLAMA_SERVER" ]; then
  port=$((port + 1))
  start_server "$port" "$dir/serve-tools-llama.log" "$LLAMA_SERVER" -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" -np 1 -c 2048 --jinja
  echo
  echo "== the same against llama-server (--jinja)"
  node bench/tools.mjs "http://127.0.0.1:$port" --tokens "${TOKENS:-256}" --rounds "${ROUNDS:-4}"
else
  echo "(llama-server: skipped - set LLAMA_SERVER to a llama-server binary built outside the project to compare)"
fi
