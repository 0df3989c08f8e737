#!/usr/bin/env bash
# Fuzzes the trace reader (and everything downstream of it: model, cycle
# search, every report format) for SECONDS (default 60), starting from the
# real traces in fuzz/seeds. Stable Rust: cargo fuzz without a sanitizer
# (Rust's own checks, debug assertions included, are what fail).
# Needs cargo-fuzz (cargo install --locked cargo-fuzz) and a C++ compiler.
# libFuzzer's progress goes to fuzz/fuzz.log: the whole of it is printed on
# a failure (with the crashing input's path), its final figures otherwise.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
mkdir -p corpus/trace_reader
log=fuzz.log
if ! cargo fuzz run --sanitizer none trace_reader corpus/trace_reader seeds -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    cat "$log"
    echo "fuzz: the trace reader failed on an input (above); see fuzz/artifacts/" >&2
    exit 1
fi
grep -E '^Done |^stat::' "$log"
