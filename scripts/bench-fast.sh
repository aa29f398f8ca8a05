#!/bin/sh
# Fast engine vs classic at 1024x768 spp 16, back to back in one run: every SIMD path on 2 and 1
# threads. Usage: scripts/bench-fast.sh [repeats]   (builds the release binary first)
set -eu
cargo build --release -p render-cli >/dev/null 2>&1
bin=target/release/render
for r in $(seq "${1:-1}"); do
    echo "# run $r"
    $bin --engine classic --spp 16 --threads 2 --out /tmp/bench-classic.ppm
    for path in avx512 avx2 sse2 scalar; do
        for t in 2 1; do
            RENDER_SIMD=$path $bin --engine fast --spp 16 --threads $t --out /tmp/bench-fast.ppm
        done
    done
done
