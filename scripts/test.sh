#!/usr/bin/env bash
# Every test suite: builds into .venv, then cargo test and pytest.
# In CI (CI=true) hypothesis runs its bounded "ci" profile.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
# Go 1.19's own allocator is the reference of the v1/v2 differential tests
# (tests/python/test_go_differential.py, through tests/goharness/run.sh). It comes from
# Debian's golang-1.19 at /usr/lib/go-1.19, whatever `go` is on PATH.
if [ ! -x /usr/lib/go-1.19/bin/go ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing golang-1.19"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19) >/dev/null
fi
# The view page's tests drive Debian's Chromium through Playwright (pip,
# the test extra), which then downloads no browser of its own.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
echo "== cargo test"
cargo test --all-targets --features allocator-api2
cargo test --doc --features allocator-api2
echo "== docs: mkdocs build --strict (warnings are errors)"
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --quiet
echo "== loom: the thread caches' cross-thread free protocol, every interleaving"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_tcache
if cargo +nightly --version >/dev/null 2>&1; then
    echo "== AddressSanitizer: the Rust tests and the fuzz seed corpora"
    ./scripts/asan.sh
else
    echo "== AddressSanitizer: not run (needs a nightly toolchain: rustup toolchain install nightly)"
fi
echo "== pytest"
.venv/bin/python -m pytest -q tests
