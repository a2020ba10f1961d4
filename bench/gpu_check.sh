#!/usr/bin/env bash
# The GPU checks in one go, for a machine with one CUDA GPU and no package index.
# Packages the machine lacks travel as wheels in .whl/ and the real model's config and tokenizer
# in .gpu/smollm2/ (see docs/gpu.md for how to fill both); results go to $OUT (or /tmp/gpu-out).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
MODEL=/tmp/spell-gpu-check/model
status=0
# step SECONDS COMMAND...: run one check under its own time limit, note a failure, go on.
step() { local limit=$1; shift; echo; echo "== $*"; timeout "$limit" "$@" || { echo "!! exit $? from: $*"; status=1; }; }
step 240 python3 bench/gpu_check.py --model-from .gpu/smollm2 --steps 2 --timeout 110 --json "$OUT/gpu_check.json"
step 90 python3 bench/shared_prefix.py --device cuda --model-dir "$MODEL" --n 8 --new 64 256
for backend in "torch" "deepspeed --zero-stage 2" "deepspeed --zero-stage 3"; do
  step 70 python3 bench/trainer_step.py --device cuda --model-dir "$MODEL" --backend $backend --steps 3
done
exit $status
