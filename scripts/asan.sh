#!/usr/bin/env bash
# The Rust tests and the fuzz targets' seed corpora under AddressSanitizer
# (nightly Rust: -Zsanitizer needs it; `rustup toolchain install nightly`).
#
#   ./scripts/asan.sh            # tests, then every fuzz target over fuzz/seeds/<target>
#
# The tests run with the allocator-api2 feature (the Heap under Rust's
# Allocator) in their own target directory; each fuzz target is built by
# cargo-fuzz (installed if missing), which instruments with ASan, and runs
# every input of its seed corpus once (-runs=0 reads the corpus and stops).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$(rustc -vV | sed -n 's/^host: //p')
echo "== cargo test under AddressSanitizer ($TARGET)"
PAGEALLOC_ASAN=1 RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR=target/asan \
    cargo +nightly test --target "$TARGET" --features allocator-api2 --lib --tests
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
for t in ops heap snapshot; do
    echo "== fuzz target $t over fuzz/seeds/$t under AddressSanitizer"
    (cd fuzz && cargo +nightly fuzz run "$t" "seeds/$t" -- -runs=0)
done
echo "asan: all clean"
