#!/bin/sh
# Fast engine vs classic at 1024x768 spp 16, back to back in one run: every SIMD path on 2 and 1
# threads, then each path's ratio to the classic run of its own round (2 threads), per round and
# as the median over rounds: the issue's "× classic" measured in one run.
# Usage: scripts/bench-fast.sh [repeats]   (builds the release binary first)
# (A path the CPU lacks runs the widest one it has; its line says which path ran.)
#
# Each render's line also gets its CPU time (user + system, from scripts/cpu-time) and the time
# the hypervisor took from this VM's CPUs while it ran ("steal" in /proc/stat). On a shared host
# steal comes in bursts of a second or so: it can double a 0.6 s render, while over a 13 s one
# it averages out, so the wall-time ratio of one round can say more about the host than the
# engines. The ratio of CPU times leaves steal out (a contended core still slows both engines);
# the script prints both.
set -eu
cargo build --release -p render-cli >/dev/null 2>&1
bin=target/release/render
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs a render, shows and logs its line with "; cpu S s, steal S s" appended; a failed render
# stops the script with its message (through a pipe into tee, sh would see only tee's status).
run() {
    out=$("$(dirname "$0")/cpu-time" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
    echo "$out" | awk '/^cpu [0-9.]+ steal/ { cpu = $2; steal = $4; next } { line = $0 }
        END { printf "%s; cpu %.2f s, steal %.2f s\n", line, cpu, steal }' | tee -a "$log"
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
# Lines read "1024x768 spp 16 (fast, avx2) in 0.650 s: ... 2 threads; cpu 1.28 s, steal 0.01 s".
awk '
function cpu_of(line) { match(line, /cpu [0-9.]+/); return substr(line, RSTART + 4, RLENGTH - 4) }
function median(a, p, m,   i, j, t) {
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[p, j] < a[p, i]) { t = a[p, i]; a[p, i] = a[p, j]; a[p, j] = t }
    return (m % 2) ? a[p, (m + 1) / 2] : (a[p, m / 2] + a[p, m / 2 + 1]) / 2
}
/^# host/ { host = $0 }
/\(classic\) in/ { classic = $6; classic_cpu = cpu_of($0) }
/\(fast, .*2 threads;/ {
    path = $5; sub(/\)$/, "", path)
    n[path]++
    r = classic / $7; ratios[path] = ratios[path] " " sprintf("%.1f", r); v[path, n[path]] = r
    c = classic_cpu / cpu_of($0); cratios[path] = cratios[path] " " sprintf("%.1f", c); w[path, n[path]] = c
}
END {
    print host
    print "# x classic, 2 threads, per round; median; wall: ratio of wall times, cpu: of CPU times (steal left out)"
    split("avx512 avx2 sse2 scalar", order, " ")
    for (o = 1; o <= 4; o++) {
        p = order[o]; m = n[p]
        if (!m) continue
        printf "%-7s wall%s; median %.1f\n", p, ratios[p], median(v, p, m)
        printf "%-7s cpu %s; median %.1f\n", p, cratios[p], median(w, p, m)
    }
}' "$log"
