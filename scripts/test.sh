#!/usr/bin/env bash
# Every test suite: builds into .venv, then cargo test and pytest.
# In CI (CI=true) hypothesis runs its bounded "ci" profile.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
# Go's own allocator is the reference of the differential test
# (tests/test_go_differential.py); Debian's golang-go is Go 1.19.
if ! command -v go >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing golang-go"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go) >/dev/null
fi
echo "== cargo test"
cargo test --all-targets
cargo test --doc
echo "== pytest"
.venv/bin/python -m pytest -q tests
