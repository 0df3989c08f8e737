#!/bin/sh
# Builds the example programs: examples/build.sh [OUTDIR] (default examples/bin).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin}
mkdir -p "$out"
for src in "$here"/c/*.c; do
    name=$(basename "$src" .c)
    case "$name" in
    lib*) # a shared library some example loads
        ${CC:-cc} -std=gnu11 -g -O1 -Wall -Wextra -pthread -shared -fPIC -o "$out/$name.so" "$src" ;;
    *)
        ${CC:-cc} -std=gnu11 -g -O1 -Wall -Wextra -pthread -o "$out/$name" "$src" -ldl ;;
    esac
done
