#!/usr/bin/env bash
# Creates .venv (if needed) and builds and installs pagealloc into it with its
# test and viz extras. Safe to run repeatedly; cargo builds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# Builds the Rust extension with maturin (the PEP 517 backend) in release mode.
# The docs extra is the tools of the test command's strict docs build.
.venv/bin/python -m pip install --quiet ".[test,viz,docs]"
