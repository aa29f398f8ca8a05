#!/bin/sh
# Fast engine vs classic at 1024x768 spp 16, back to back in one run: every SIMD path on 2 and 1
# threads, then each path's ratio to the classic run of its own round (2 threads), per round and
# as the median over rounds: the "× classic" measured in one run.
# Usage: scripts/bench-fast.sh [repeats]   (builds the release binary first)
# (A path the CPU lacks runs the widest one it has; its line says which path ran.)
set -eu
cargo build --release -p render-cli >/dev/null 2>&1
bin=target/release/render
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs a render, shows and logs its line; a failed render stops the script with its message
# (through a pipe into tee, sh would see only tee's status).
run() {
    out=$("$@" 2>&1) || { echo "$out" >&2; exit 1; }
    echo "$out" | tee -a "$log"
}
# Which CPU the figures come from (the ratios differ by host; BENCHMARKS.md names it for each).
awk -F': ' '/^processor/ { cpus++ } /^model name/ && !m { m = $2 } /^cpu family/ && !f { f = $2 }
    /^model\t/ && !n { n = $2 } /^flags/ && !g { g = ($2 ~ /(^| )avx512f( |$)/) ? "avx512f" : "no avx512f" }
    END { printf "# host: %s (family %s model %s), %s, %d cpus\n", m, f, n, g, cpus }' \
    /proc/cpuinfo | tee -a "$log"
for r in $(seq "${1:-1}"); do
    echo "# run $r" | tee -a "$log"
    run $bin --engine classic --spp 16 --threads 2 --out /tmp/bench-classic.ppm
    for path in avx512 avx2 sse2 scalar; do
        for t in 2 1; do
            run env RENDER_SIMD=$path $bin --engine fast --spp 16 --threads $t --out /tmp/bench-fast.ppm
        done
    done
done
# Lines read "1024x768 spp 16 (fast, avx2) in 0.650 s: ... 2 threads".
awk '
/^# host/ { host = $0 }
/\(classic\) in/ { classic = $6 }
/\(fast, .*2 threads$/ {
    path = $5; sub(/\)$/, "", path)
    r = classic / $7; ratios[path] = ratios[path] " " sprintf("%.1f", r)
    n[path]++; v[path, n[path]] = r
}
END {
    print host
    print "# x classic, 2 threads, per round; median"
    split("avx512 avx2 sse2 scalar", order, " ")
    for (o = 1; o <= 4; o++) {
        p = order[o]; m = n[p]
        if (!m) continue
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[p, j] < v[p, i]) { t = v[p, i]; v[p, i] = v[p, j]; v[p, j] = t }
        med = (m % 2) ? v[p, (m + 1) / 2] : (v[p, m / 2] + v[p, m / 2 + 1]) / 2
        printf "%-7s%s; median %.1f\n", p, ratios[p], med
    }
}' "$log"
