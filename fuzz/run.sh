#!/usr/bin/env bash
# Fuzzes the trace reader (and everything downstream of it: model, cycle
# search, every report format) for SECONDS (default 60), starting from the
# real traces in fuzz/seeds. Stable Rust: cargo fuzz without a sanitizer
# (Rust's own checks, debug assertions included, are what fail).
# Needs cargo-fuzz (cargo install --locked cargo-fuzz) and a C++ compiler.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
mkdir -p corpus/trace_reader
exec cargo fuzz run --sanitizer none trace_reader corpus/trace_reader seeds -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1
