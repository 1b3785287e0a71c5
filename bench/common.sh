# Sourced by the bench scripts: the project built, and what they share. Sets dir (BENCH_DIR,
# default build/bench), threads (THREADS, 2) and shared (HAI_SHARED_DIR, ../shared).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
dir=${BENCH_DIR:-build/bench}
threads=${THREADS:-2}
shared=${HAI_SHARED_DIR:-$(cd .. && pwd)/shared}
mkdir -p "$dir"

# The 0.5B model of Qwen2's geometry with the real Qwen vocabulary (random weights, Q8_0), made
# once by hai synth (or MODEL); prints its path.
qwen05_model() {
  local model=${MODEL:-$dir/qwen2-0.5b-Q8_0.gguf}
  if [ ! -f "$model" ]; then
    echo "== generating $model (random weights, Qwen2-0.5B geometry, the Qwen vocabulary)" >&2
    ./build/hai synth --arch qwen2 --n-embd 896 --n-layer 24 --n-head 14 --n-head-kv 2 --n-ff 4864 --tied \
      --vocab "$shared/vocab/ggml-vocab-qwen2.gguf" --type Q8_0 -o "$model" >&2
  fi
  echo "$model"
}

# Waits until a server on 127.0.0.1:PORT answers /health (60 s at most).
wait_up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

# Starts a server in the background (its log in LOG, killed when the script ends) and waits until
# 127.0.0.1:PORT answers; on failure shows the log's end and exits. usage: start_server PORT LOG CMD...
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
start_server() {
  local port=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  wait_up "$port" || { tail -20 "$log"; exit 1; }
}
