#!/usr/bin/env bash
# The webgpu figures of bench/results.md, on a GPU machine with no network: run it from the folder that
# bench/pack-portable.sh's archive unpacks to (it is packed there). Correctness against cpu first, then GPU
# programs per step, then seconds per meta-iteration on webgpu beside the fused wasm kernel on the same
# machine's CPU, and Q at growing sizes. Every step has a time limit, so one that hangs leaves the rest
# their time. JSON lines go to stdout and to $LOG_DIR/results.jsonl; stderr to $LOG_DIR/stderr.txt.
#
#     bash webgpu-device.sh REFERENCE.json [LOG_DIR=.]    # REFERENCE: node bench/dist/webgpu-check.js --save FILE
set -uo pipefail
cd "$(dirname "$0")"
reference=${1:?usage: webgpu-device.sh REFERENCE.json [LOG_DIR]}
logs=${2:-.}
mkdir -p "$logs"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
step() { # seconds, command...: runs it with a limit, JSON lines to results.jsonl
  local limit=$1
  shift
  echo "# $(date -u +%T) $*" | tee -a "$logs/stderr.txt" >&2
  timeout "$limit" "$@" 2>>"$logs/stderr.txt" | tee -a "$logs/results.jsonl"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || echo "{\"step\":\"$*\",\"exit\":$rc}" | tee -a "$logs/results.jsonl"
}
echo "{\"commit\":\"$(cat COMMIT)\",\"node\":\"$(./node --version)\",\"gpu\":\"$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)\",\"cpus\":$(nproc)}" | tee -a "$logs/results.jsonl"
step 60 ./node bench/dist/webgpu-check.js --reference "$reference"
step 20 ./node bench/dist/webgpu-programs.js 128 20
step 20 ./node bench/dist/webgpu-programs.js 128 20 --rnnprop
step 20 ./node bench/dist/webgpu-programs.js 128 20 --eval
step 40 ./node bench/dist/webgpu-programs.js 1600 20 --eval --gpu-time
# GPU milliseconds by program kind (timestamp queries): launches against arithmetic at a large size.
step 40 ./node bench/dist/webgpu-programs.js 100000 20 --gpu-time
step 60 ./node bench/dist/run.js --backend webgpu --only Q,M,MR --runs 3 --warmup 1
step 40 ./node bench/dist/run.js --backend webgpu --only eval --runs 1 --warmup 1
step 30 ./node bench/dist/run.js --backend wasm --only Q,M --runs 3 --warmup 1
step 30 ./node bench/dist/run.js --backend wasm --only eval --runs 1 --warmup 1
step 40 ./node bench/dist/run.js --backend wasm --only M,MR --runs 3 --warmup 1 --workers "$(nproc)"
# Q at 128,000 and 1,000,000 coordinates: where the GPU overtakes the fused kernel, on one thread and on all.
for b in 12800 100000; do
  step 45 ./node bench/dist/run.js --backend webgpu --only Q --q-batch $b --runs 2 --warmup 1
  step 45 ./node bench/dist/run.js --backend wasm --only Q --q-batch $b --runs 2 --warmup 1
  step 45 ./node bench/dist/run.js --backend wasm --only Q --q-batch $b --runs 2 --warmup 1 --workers "$(nproc)"
done
