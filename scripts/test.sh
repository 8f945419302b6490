#!/usr/bin/env bash
# Every test suite: builds into .venv, then cargo test and pytest.
# In CI (CI=true) hypothesis runs its bounded "ci" profile.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
echo "== cargo test"
cargo test --all-targets
cargo test --doc
echo "== pytest"
.venv/bin/python -m pytest -q tests
