#!/usr/bin/env bash
# Install llama-cpp-python[server]: the real OpenAI-compatible server tests/backends runs on loopback.
#
#   scripts/install_llama_server.sh [VENV]     (default VENV: .venv)
#
# PyPI has only the source of llama-cpp-python, so it is built here (about 10-15 minutes
# on 2 cores). The built wheel is kept in $LLM_MAGICS_WHEEL_CACHE (default
# ~/.cache/llm_magics/wheels), so later runs install it in seconds. Skips everything when
# the venv can already import the server.
#
# GGML_NATIVE=OFF with an explicit AVX2/FMA/F16C set: a native build (the default)
# crashed with SIGSEGV at the first token on these machines.
set -euo pipefail

VENV="${1:-.venv}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="${LLM_MAGICS_WHEEL_CACHE:-$HOME/.cache/llm_magics/wheels}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "install_llama_server: no Python at $PY; pass the venv folder as the first argument" >&2
    exit 2
fi
if "$PY" -c "import llama_cpp.server.app, uvicorn, sse_starlette" 2>/dev/null; then
    echo "install_llama_server: llama-cpp-python $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)') already installed in $VENV"
    exit 0
fi

mkdir -p "$CACHE"
find_wheel() { ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n 1 || true; }
WHEEL="$(find_wheel)"
if [ -z "$WHEEL" ]; then
    echo "install_llama_server: building llama-cpp-python $VERSION (about 10-15 minutes)..."
    start=$(date +%s)
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PY" -m pip wheel --no-deps --no-cache-dir -w "$CACHE" "llama-cpp-python==$VERSION"
    WHEEL="$(find_wheel)"
    echo "install_llama_server: built $WHEEL in $(( $(date +%s) - start )) s"
else
    echo "install_llama_server: using cached $WHEEL"
fi
if [ -z "$WHEEL" ]; then
    echo "install_llama_server: no wheel for llama-cpp-python $VERSION in $CACHE after the build" >&2
    exit 1
fi
"$PY" -m pip install -q "${WHEEL}[server]"
"$PY" -c "import llama_cpp.server.app; import llama_cpp; print('install_llama_server: llama-cpp-python', llama_cpp.__version__, 'ready')"
