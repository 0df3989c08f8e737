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
# Its code in a second executable segment, after one of `.init` and `.plt`
# alone, as node's is: the unwinder must know all of them.
${CC:-cc} -std=gnu11 -g -O1 -Wall -Wextra -pthread -no-pie -Wl,--section-start=.text=0x1000000 \
    -o "$out/lockorder_splittext" "$here/c/lockorder.c"
# No unwind tables, frame pointers kept, as Chromium is built: its stacks
# go on by frame pointer where libgcc's would end.
${CC:-cc} -std=gnu11 -g -O1 -Wall -Wextra -pthread -fno-asynchronous-unwind-tables -fno-unwind-tables \
    -fno-omit-frame-pointer -o "$out/lockorder_nofde" "$here/c/lockorder.c"
# A static binary, which no preload reaches: run watches it from outside.
${CC:-cc} -std=gnu11 -g -O1 -Wall -Wextra -static -o "$out/single_static" "$here/c/single.c"
# The same for the two-lock deadlock: glibc linked in, whose locks inspect
# cannot find to read.
${CC:-cc} -std=gnu11 -g -O1 -Wall -Wextra -pthread -static -o "$out/abba_static" "$here/c/abba.c"
# C++ examples (std::mutex and friends), where a C++ compiler is installed.
if command -v "${CXX:-c++}" >/dev/null 2>&1; then
    for src in "$here"/cpp/*.cpp; do
        ${CXX:-c++} -std=c++17 -g -O1 -Wall -Wextra -pthread -o "$out/$(basename "$src" .cpp)" "$src"
    done
else
    echo "examples/build.sh: no C++ compiler (${CXX:-c++}); the C++ examples are not built" >&2
fi
# A Rust program (std::sync::Mutex: futexes that record no holder), where
# rustc is installed (it is wherever holdcheck is built).
if command -v rustc >/dev/null 2>&1; then
    rustc --edition 2021 -O -g -o "$out/rustlocks" "$here/rust/rustlocks.rs"
else
    echo "examples/build.sh: no rustc; the Rust example is not built" >&2
fi
