#!/bin/sh
# Builds the example programs: examples/build.sh [OUTDIR] (default examples/bin).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin}
mkdir -p "$out"
for src in "$here"/c/*.c; do
    name=$(basename "$src" .c)
    ${CC:-cc} -std=gnu11 -g -O1 -Wall -Wextra -pthread -o "$out/$name" "$src"
done
