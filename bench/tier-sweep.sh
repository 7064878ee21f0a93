#!/usr/bin/env bash
# Decode speed under a RAM budget: strata's disk tier (--fit --ram-budget) against
# plain mmap of the same file, each run inside a memory cgroup limited to the
# budget, so the page cache cannot quietly hold more of the model than the
# budget allows. Needs root and the cgroup v1 memory controller (or cgroup v2
# mounted at /sys/fs/cgroup with the memory controller enabled).
#
# Usage: bench/tier-sweep.sh MODEL [PERCENT...]   (default: 100 75 50 25)
# Env: STRATA (binary, default build/strata), N_GEN (default 16), N_PROMPT (default 8)
set -euo pipefail
model=${1:?usage: bench/tier-sweep.sh MODEL [PERCENT...]}
shift
percents=("$@")
[ $# -eq 0 ] && percents=(100 75 50 25)
strata=${STRATA:-build/strata}
n_gen=${N_GEN:-16}
n_prompt=${N_PROMPT:-8}
size=$(stat -c %s "$model")

if [ -d /sys/fs/cgroup/memory ]; then
    cg=/sys/fs/cgroup/memory/strata-sweep
    limit_file=memory.limit_in_bytes
    peak_file=memory.max_usage_in_bytes
else
    cg=/sys/fs/cgroup/strata-sweep
    limit_file=memory.max
    peak_file=memory.peak
fi
mkdir -p "$cg"
trap 'rmdir "$cg" 2>/dev/null || true' EXIT

# Runs "$@" inside the cgroup limited to $1 bytes; prints its stdout.
in_cgroup() {
    local limit=$1
    shift
    echo 0 > "$cg/$peak_file" 2>/dev/null || true
    echo "$limit" > "$cg/$limit_file"
    sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$cg" "$@"
}

# The generation row's tokens/s from bench's CSV.
tg_rate() { awk -F, 'NR > 1 && $6 == "\"0\"" { gsub(/"/, "", $8); print $8 }'; }

printf '| budget | bytes | mode | tg t/s | cache hits (reuse) | prefetched | stalled on disk | read from disk (whole run) | cgroup peak |\n'
printf '|---:|---:|---|---:|---:|---:|---:|---:|---:|\n'
for pct in "${percents[@]}"; do
    budget=$((size * pct / 100))
    for mode in disk mmap; do
        sync
        echo 3 > /proc/sys/vm/drop_caches
        args=(bench "$model" -p "$n_prompt" -n "$n_gen" -r 1 --csv --membw-mib 256)
        if [ "$mode" = disk ]; then
            args+=(--fit --ram-budget "$budget" --expert-stats)
        fi
        # The cgroup gets the budget; strata's plan keeps its own margin inside it.
        out=$(in_cgroup "$budget" "$strata" "${args[@]}" 2>/dev/null) || out=""
        rate=$(printf '%s\n' "$out" | tg_rate)
        stats=$(printf '%s\n' "$out" | grep '^disk-tier cache:' || true)
        reuse="" prefetched="" stalled="" read=""
        if [ -n "$stats" ]; then
            # "H hits (P prefetched, W waited for), M misses (..% hits), R read from disk, ..."
            read -r hits pref waits misses < <(sed -E \
                's/^disk-tier cache: ([0-9]+) hits \(([0-9]+) prefetched, ([0-9]+) waited for\), ([0-9]+) misses.*/\1 \2 \3 \4/' \
                <<<"$stats")
            pct_of() { awk -v a="$1" -v t="$2" 'BEGIN { printf "%.1f%%", t ? 100 * a / t : 0 }'; }
            total=$((hits + misses))
            reuse=$(pct_of $((hits - pref)) "$total")
            prefetched=$(pct_of "$pref" "$total")
            stalled=$(pct_of $((misses + waits)) "$total")
            read=$(sed -E 's/.*% hits\), ([0-9.]+ [KMG]iB) read from disk.*/\1/' <<<"$stats")
        fi
        peak=$(($(cat "$cg/$peak_file") >> 20))
        printf '| %s%% | %s | %s | %s | %s | %s | %s | %s | %s MiB |\n' "$pct" "$budget" "$mode" "${rate:-failed}" \
            "$reuse" "$prefetched" "$stalled" "$read" "$peak"
    done
done
