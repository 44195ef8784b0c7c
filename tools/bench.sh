#!/usr/bin/env bash
# `make bench`: runs each scenario's load straight at a fake provider and through emr (and, for
# the overhead and burst loads, through the Portkey gateway) in one run, verifies every vector,
# and prints one table with the issue's targets checked as ratios against the direct run.
#
# Usage: tools/bench.sh BUILD_DIR [--smoke] [--small] [--only a,b,...] [--no-peer] [--out DIR]
#                                 [--charts DIR]
#   --smoke     small loads, no peer, no sweep; fails when a count is wrong (used by `make test`)
#   --small     the smoke run's small loads, with the full report: to try a scenario quickly
#   --only      scenarios: burst burst_realistic sparse closed closed_realistic rate
#               rate_configured rate_fleet overhead dedup tokens cache cache_half
#               cache_stored cache_memory_off cache_memory fairness sweep sweep_realistic
# The provider models (unlimited, realistic) are tools/stack.sh's.
#   --out       keep the raw results (one JSON line per run, latencies per run) in DIR
#   --charts    render the latency and concurrency charts (PNG) into DIR (needs python3-matplotlib)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${1:?usage: tools/bench.sh BUILD_DIR [--smoke] [--small] [--only LIST] [--no-peer] [--out DIR] [--charts DIR]}"
shift
build_dir="$(cd "$build_dir" && pwd)"
smoke=0
small=0
only="burst,burst_realistic,sparse,closed,closed_realistic,rate,rate_configured,rate_fleet,overhead,dedup,tokens"
only+=",cache,cache_half,cache_stored,cache_memory_off,cache_memory,fairness,sweep,sweep_realistic"
peer=1
out=""
charts=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; small=1; peer=0; only="burst,burst_realistic,sparse,closed,rate,rate_configured,rate_fleet,overhead,dedup,tokens,cache,cache_half,cache_stored,fairness" ;;
    --small) small=1 ;;
    --only) only="$2"; shift ;;
    --no-peer) peer=0 ;;
    --out) out="$2"; shift ;;
    --charts) charts="$2"; shift ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in fake_provider emr loadgen; do
  [ -x "$build_dir/$tool" ] || { echo "bench: $build_dir/$tool is missing; run make build" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "bench: jq is required" >&2; exit 1; }
if [ "$peer" -eq 1 ] && ! command -v node >/dev/null; then
  echo "bench: node is missing, so the Portkey peer is skipped" >&2
  peer=0
fi

if [ -n "$out" ]; then
  mkdir -p "$out"
  results="$(cd "$out" && pwd)"
else
  results="$(mktemp -d "${TMPDIR:-/tmp}/emr-bench.XXXXXX")"
  trap 'rm -rf "$results"' EXIT
fi
runs="$results/runs.jsonl"
: >"$runs"

# Sizes: the issue's loads, or a few seconds' worth for the smoke run.
if [ "$small" -eq 1 ]; then
  burst_callers=100 sparse_requests=10 closed_workers=10 closed_requests=5
  rate_workers=20 rate_seconds=3 overhead_seconds=2 overhead_requests=20
  dedup_callers=100 token_callers=300 sweep_points="1 10 100" sweep_repeats=1
  cache_requests=100 cache_half_requests=10 cache_memory_requests=10
  fair_bulk_callers=4 fair_seconds=4 fair_requests=20
else
  burst_callers=1000 sparse_requests=200 closed_workers=100 closed_requests=20
  rate_workers=200 rate_seconds=60 overhead_seconds=20 overhead_requests=2000
  dedup_callers=1000 token_callers=300 sweep_points="1 10 50 100 200 500 1000" sweep_repeats=5
  cache_requests=1000 cache_half_requests=100 cache_memory_requests=50
  fair_bulk_callers=48 fair_seconds=20 fair_requests=200
fi

ticks_per_s="$(getconf CLK_TCK)"
# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v hz="$ticks_per_s" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# Peak resident set size in MB since the process started.
peak_rss_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

fake_reset() { curl -sf -H 'Content-Type: application/json' -d '{}' "$FAKE_URL/_reset" >/dev/null; }
fake_stats() { curl -sf "$FAKE_URL/_stats" | jq -c '{calls, texts, status_counts, peak_in_flight, peak_waiting}'; }

# One load through one path. The loadgen summary, the fake's counts for this run (calls, texts,
# statuses, and the most calls it served at once and kept waiting) and emr's CPU and peak RSS go
# to $runs as one JSON line. A path whose callers fail still records its line: the report judges
# it.
#   measure SCENARIO PATH LABEL LOADGEN_ARGS...   (PATH: direct | emr | portkey)
# A scenario that loads the same label more than once numbers each load in `repeat`.
measure() {
  local scenario="$1" path="$2" label="$3"
  shift 3
  local tag="$scenario-$path-$label${repeat:+-$repeat}" cpu0=0 rc=0
  fake_reset
  [ "$path" = emr ] && cpu0="$(cpu_seconds "$EMR_PID")"
  "$build_dir/loadgen" --json --latencies "$results/$tag.latencies" "$@" >"$results/$tag.json" || rc=$?
  [ -s "$results/$tag.json" ] || { echo "bench: loadgen failed for $tag (exit $rc)" >&2; return 1; }
  record_run "$scenario" "$path" "$label" "$cpu0"
}

# Appends the run whose loadgen summary is $results/SCENARIO-PATH-LABEL.json to $runs, with the
# fake's counts as they stand and emr's CPU since CPU0 (0 when the path is not emr's) and peak RSS.
#   record_run SCENARIO PATH LABEL CPU0
record_run() {
  local scenario="$1" path="$2" label="$3" cpu0="$4" cpu1=0 rss=0
  local tag="$scenario-$path-$label${repeat:+-$repeat}"
  if [ "$path" = emr ]; then
    cpu1="$(cpu_seconds "$EMR_PID")"
    rss="$(peak_rss_mb "$EMR_PID")"
  fi
  jq -c --arg scenario "$scenario" --arg path "$path" --arg name "$label" \
    --argjson max_batch "$MAX_BATCH" --argjson upstream "$(fake_stats)" --argjson cpu "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }')" \
    --argjson rss "$rss" --arg latencies "$results/$tag.latencies" --argjson repeat "${repeat:-1}" \
    '{scenario: $scenario, path: $path, label: $name, repeat: $repeat, max_batch: $max_batch, load: .,
      upstream: $upstream, emr_cpu_s: $cpu, emr_peak_rss_mb: $rss, latencies: $latencies}' \
    "$results/$tag.json" >>"$runs"
  printf '  %-9s %-8s %-18s ok %s/%s, upstream calls %s\n' "$scenario" "$path" "$label" \
    "$(jq .ok "$results/$tag.json")" "$(jq .total "$results/$tag.json")" \
    "$(tail -n1 "$runs" | jq .upstream.calls)"
}

# A fresh fake and emr for each scenario, so emr's peak RSS and CPU belong to that scenario alone.
#   with_stack FAKE_ARGS -- PROVIDER_TYPE MODEL MAX_BATCH [RPM]
# registers the provider with the operator-set limit RPM when given, and sets DIRECT (loadgen
# args for the direct path), VIA_EMR (for the emr path) and MAX_BATCH. emr's config gets
# BENCH_EMR_TOML when a scenario sets it.
with_stack() {
  local fake_args=()
  while [ "$1" != "--" ]; do fake_args+=("$1"); shift; done
  shift
  local type="$1" model="$2" rpm="${4:-}"
  MAX_BATCH="$3"
  stack_start_fake "${fake_args[@]}"
  export BENCH_PROVIDER_KEY="bench-provider-key"
  stack_start_emr "${BENCH_EMR_TOML:-}"
  stack_add_provider upstream "$type" BENCH_PROVIDER_KEY "$FAKE_URL/v1/embeddings" "$model" "$MAX_BATCH" "$rpm"
  stack_create_key bench
  DIRECT=(--url "$FAKE_URL" --key "$BENCH_PROVIDER_KEY" --model "$model" --verify-model "$model")
  VIA_EMR=(--url "$EMR_URL" --key "$KEY" --provider upstream --verify-model "$model")
  # A serving router is warm: the first call pays for argon2 and the upstream connection.
  "$build_dir/loadgen" "${VIA_EMR[@]}" --mode closed --callers 1 --requests 1 --text-prefix warm >/dev/null
}

# The Portkey gateway in front of the same fake, speaking OpenAI's format (tools/peer/).
start_peer() {
  local port
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  STACK_PIDS+=("$("$here/peer/start-portkey.sh" "$port" "$STACK_WORK/portkey.log")")
  # Portkey asks upstream for gzip unless told otherwise; the fake would then spend its CPU
  # compressing, and the peer's numbers would measure the fake. identity keeps both paths alike.
  PEER=(--url "http://127.0.0.1:$port" --path /v1/embeddings --key "$BENCH_PROVIDER_KEY"
        --header "x-portkey-provider: openai" --header "x-portkey-custom-host: $FAKE_URL/v1"
        --header "Accept-Encoding: identity" --header "x-portkey-forward-headers: accept-encoding"
        --model text-embedding-3-small --verify-model text-embedding-3-small)
}

# shellcheck source=stack.sh
. "$here/stack.sh"

# Fake latency models: tools/stack.sh's two provider models, a slow provider for the sparse
# scenario, and zero for the overhead scenario, where only the routers' own costs show.
unlimited=("${STACK_UNLIMITED_PROVIDER[@]}")
realistic=("${STACK_REALISTIC_PROVIDER[@]}")

scenario_burst() {
  with_stack "${unlimited[@]}" -- voyage voyage-3.5 128
  local load=(--mode burst --callers "$burst_callers" --text-prefix "burst text")
  measure burst direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure burst emr voyage-3.5 "${VIA_EMR[@]}" "${load[@]}"
  if [ "$peer" -eq 1 ]; then
    start_peer
    measure burst direct text-embedding-3-small --url "$FAKE_URL" --key "$BENCH_PROVIDER_KEY" \
      --model text-embedding-3-small --verify-model text-embedding-3-small "${load[@]}"
    measure burst portkey text-embedding-3-small "${PEER[@]}" "${load[@]}"
  fi
}

# Where the provider makes callers queue: emr's few calls should beat a thousand queued ones.
scenario_burst_realistic() {
  with_stack "${realistic[@]}" -- voyage voyage-3.5 128
  local load=(--mode burst --callers "$burst_callers" --text-prefix "burst text")
  measure burst_realistic direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure burst_realistic emr voyage-3.5 "${VIA_EMR[@]}" "${load[@]}"
}

scenario_sparse() {
  with_stack --latency-ms 50 -- voyage voyage-3.5 128
  local load=(--mode closed --callers 1 --requests "$sparse_requests" --text-prefix "sparse text")
  measure sparse direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure sparse emr voyage-3.5 "${VIA_EMR[@]}" "${load[@]}"
}

# The closed loop on one provider model: closed_loop SCENARIO MODEL_FLAGS...
closed_loop() {
  local scenario="$1"
  shift
  with_stack "$@" -- voyage voyage-3.5 128
  local load=(--mode closed --callers "$closed_workers" --requests "$closed_requests" --text-prefix "closed text")
  measure "$scenario" direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure "$scenario" emr voyage-3.5 "${VIA_EMR[@]}" "${load[@]}"
}
scenario_closed() { closed_loop closed "${unlimited[@]}"; }
scenario_closed_realistic() { closed_loop closed_realistic "${realistic[@]}"; }

# 600 requests a minute at the fake; callers retry 429s as the official SDKs do. emr either learns
# the limit from the provider's 429s (rate) or is told it by the operator (rate_configured).
#   rate_limited SCENARIO [RPM_REGISTERED]
rate_limited() {
  local scenario="$1" registered="${2:-}"
  with_stack "${unlimited[@]}" --rpm 600 -- voyage voyage-3.5 128 "$registered"
  local load=(--mode duration --callers "$rate_workers" --duration-s "$rate_seconds" --retry-429
              --text-prefix "rate text")
  # measure resets the fake, its rate limiter included: each path starts on a fresh minute.
  measure "$scenario" direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure "$scenario" emr voyage-3.5 "${VIA_EMR[@]}" "${load[@]}"
}
scenario_rate() { rate_limited rate; }
scenario_rate_configured() { rate_limited rate_configured 600; }

# The same load and limit spread over a fleet: three replicas behind HAProxy share the
# operator-set limit through PostgreSQL. The direct run is the same as rate_configured's.
scenario_rate_fleet() {
  MAX_BATCH=128
  stack_start_fake "${unlimited[@]}" --rpm 600
  export BENCH_PROVIDER_KEY="bench-provider-key"
  stack_start_fleet 3
  stack_add_provider upstream voyage BENCH_PROVIDER_KEY "$FAKE_URL/v1/embeddings" voyage-3.5 "$MAX_BATCH" 600
  stack_create_key bench
  DIRECT=(--url "$FAKE_URL" --key "$BENCH_PROVIDER_KEY" --model voyage-3.5 --verify-model voyage-3.5)
  VIA_EMR=(--url "$EMR_URL" --key "$KEY" --provider upstream --verify-model voyage-3.5)
  # Warm every replica: HAProxy takes each new connection to the next one.
  "$build_dir/loadgen" "${VIA_EMR[@]}" --mode closed --callers 3 --requests 1 --text-prefix warm >/dev/null
  local load=(--mode duration --callers "$rate_workers" --duration-s "$rate_seconds" --retry-429
              --text-prefix "rate text")
  measure rate_fleet direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure rate_fleet emr voyage-3.5 "${VIA_EMR[@]}" "${load[@]}"
}

# Zero-latency fake, OpenAI's format for all three paths so the peer carries the same load.
scenario_overhead() {
  with_stack --latency-ms 0 -- openai text-embedding-3-small 2048
  local single=(--mode closed --callers 1 --requests "$overhead_requests" --text-prefix "single text")
  local many=(--mode duration --callers 64 --duration-s "$overhead_seconds" --text-prefix "loop text")
  measure overhead direct single "${DIRECT[@]}" "${single[@]}"
  measure overhead emr single "${VIA_EMR[@]}" "${single[@]}"
  measure overhead direct 64-callers "${DIRECT[@]}" "${many[@]}"
  measure overhead emr 64-callers "${VIA_EMR[@]}" "${many[@]}"
  if [ "$peer" -eq 1 ]; then
    start_peer
    measure overhead portkey single "${PEER[@]}" "${single[@]}"
    measure overhead portkey 64-callers "${PEER[@]}" "${many[@]}"
  fi
}

scenario_dedup() {
  with_stack "${unlimited[@]}" -- voyage voyage-3.5 128
  local load=(--mode burst --callers "$dedup_callers" --distinct-callers 10 --text-prefix "shared text")
  measure dedup direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure dedup emr voyage-3.5 "${VIA_EMR[@]}" "${load[@]}"
}

# 4,000-byte texts are 1,000 tokens to the fake; voyage-3-large takes 120K tokens a call.
scenario_tokens() {
  with_stack "${unlimited[@]}" -- voyage voyage-3-large 1000
  local load=(--mode burst --callers "$token_callers" --text-bytes 4000 --text-prefix "long text")
  measure tokens direct voyage-3-large "${DIRECT[@]}" "${load[@]}"
  measure tokens emr voyage-3-large "${VIA_EMR[@]}" "${load[@]}"
}

# 10,000 distinct texts (10 callers x 1,000 requests, a re-index's workers), then the same texts
# again: the second pass is answered from emr's embedding cache. The fake answers at once, so the
# direct run is the floor a cached answer is held to.
scenario_cache() {
  with_stack --latency-ms 0 -- voyage voyage-3.5 128
  local load=(--mode closed --callers 10 --requests "$cache_requests" --text-prefix "cache text")
  measure cache direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure cache emr first-pass "${VIA_EMR[@]}" "${load[@]}"
  measure cache emr second-pass "${VIA_EMR[@]}" "${load[@]}"
}

# 1,000 texts (callers 0-9), then 2,000 (callers 0-19) of which those 1,000 are the first half:
# only the new half may go upstream.
scenario_cache_half() {
  with_stack "${unlimited[@]}" -- voyage voyage-3.5 128
  measure cache_half emr seen-first "${VIA_EMR[@]}" --mode closed --callers 10 \
    --requests "$cache_half_requests" --text-prefix "half text"
  measure cache_half emr half-seen "${VIA_EMR[@]}" --mode closed --callers 20 \
    --requests "$cache_half_requests" --text-prefix "half text"
}

# The cache kept in the store (SQLite here): the same texts twice, with emr restarted between the
# passes, so that memory is empty and every text of the second pass is read back from the store.
scenario_cache_stored() {
  local toml=$'[cache]\nstored_entries = 100000'
  BENCH_EMR_TOML="$toml" with_stack --latency-ms 0 -- voyage voyage-3.5 128
  local load=(--mode closed --callers 10 --requests "$cache_requests" --text-prefix "stored text")
  measure cache_stored direct voyage-3.5 "${DIRECT[@]}" "${load[@]}"
  measure cache_stored emr first-pass "${VIA_EMR[@]}" "${load[@]}"
  kill -TERM "$EMR_PID"
  wait "$EMR_PID" || true # its last vectors are written as it stops
  rm -f "$STACK_WORK/emr.port" # the new one listens on another port
  stack_start_emr "$toml"
  VIA_EMR=(--url "$EMR_URL" --key "$KEY" --provider upstream --verify-model voyage-3.5)
  measure cache_stored emr after-restart "${VIA_EMR[@]}" "${load[@]}"
}

# The cache's byte bound against emr's resident memory: 20,000 distinct 1,024-float vectors (about
# 87 MB kept unbounded) through emr with the cache off, then through another emr whose cache may
# take 32 MiB. Its peak RSS must stay within the first one's plus the bound.
cache_memory_load() {
  local scenario="$1" label="$2"
  with_stack --latency-ms 0 -- voyage voyage-3.5 128
  measure "$scenario" emr "$label" "${VIA_EMR[@]}" --mode closed --callers 40 \
    --requests "$cache_memory_requests" --texts-per-call 10 --text-prefix "memory text"
}
scenario_cache_memory_off() { BENCH_EMR_TOML=$'[cache]\nmax_bytes = 0' cache_memory_load cache_memory_off "cache off"; }
scenario_cache_memory() { BENCH_EMR_TOML=$'[cache]\nmax_bytes = 33554432' cache_memory_load cache_memory "32 MiB"; }

# Fair batches: tenant A (one key) keeps about 100,000 texts queued (48 callers of 2,048 texts each;
# 256-float vectors in base64, so that rendering them does not swamp the machine) while tenant B
# (another key) sends single texts one after another. B's p50 is held to its p50 on an idle emr,
# A's throughput to what it gets alone.
scenario_fairness() {
  with_stack "${unlimited[@]}" -- voyage voyage-3.5 128
  local bulk=(--url "$EMR_URL" --key "$KEY" --provider upstream --verify-model voyage-3.5
              --dimensions 256 --encoding base64 --mode duration --callers "$fair_bulk_callers"
              --texts-per-call 2048 --duration-s "$fair_seconds")
  stack_create_key interactive
  local lone=(--url "$EMR_URL" --key "$KEY" --provider upstream --verify-model voyage-3.5
              --dimensions 256 --mode closed --callers 1 --requests "$fair_requests")
  measure fairness emr B-idle "${lone[@]}" --text-prefix "lone idle"
  measure fairness emr A-alone "${bulk[@]}" --text-prefix "bulk alone"
  fake_reset
  local cpu0 bulk_pid rc=0
  cpu0="$(cpu_seconds "$EMR_PID")"
  "$build_dir/loadgen" --json --latencies "$results/fairness-emr-A-with-B.latencies" "${bulk[@]}" \
    --text-prefix "bulk shared" >"$results/fairness-emr-A-with-B.json" &
  bulk_pid=$!
  sleep 2 # A's backlog forms
  "$build_dir/loadgen" --json --latencies "$results/fairness-emr-B-with-A.latencies" "${lone[@]}" \
    --text-prefix "lone shared" >"$results/fairness-emr-B-with-A.json" || rc=$?
  wait "$bulk_pid" || rc=$?
  [ "$rc" -eq 0 ] || { echo "bench: loadgen failed for fairness (exit $rc)" >&2; return 1; }
  record_run fairness emr B-with-A "$cpu0"
  record_run fairness emr A-with-B "$cpu0"
}

# Upstream calls and p50 against concurrency on one provider model, for the chart:
#   concurrency_sweep SCENARIO MODEL_FLAGS...
# One burst's p50 on two shared cores moves by a fifth from one burst to the next, so each point
# is $sweep_repeats bursts per path, direct and emr in turn, and the report takes each path's
# median. Each burst sends texts of its own: a repeat must not find its vectors in emr's cache.
concurrency_sweep() {
  local scenario="$1"
  shift
  with_stack "$@" -- voyage voyage-3.5 128
  local n repeat
  for n in $sweep_points; do
    for ((repeat = 1; repeat <= sweep_repeats; repeat++)); do
      measure "$scenario" direct "$n" "${DIRECT[@]}" --mode burst --callers "$n" \
        --text-prefix "sweep $n $repeat"
      measure "$scenario" emr "$n" "${VIA_EMR[@]}" --mode burst --callers "$n" \
        --text-prefix "sweep $n $repeat"
    done
  done
  unset repeat
}
scenario_sweep() { concurrency_sweep sweep "${unlimited[@]}"; }
scenario_sweep_realistic() { concurrency_sweep sweep_realistic "${realistic[@]}"; }

failed_scenarios=()
echo "bench on $(nproc) cores, $(uname -r); loads $( [ "$small" -eq 1 ] && echo "(smoke sizes)")"
for scenario in ${only//,/ }; do
  declare -F "scenario_$scenario" >/dev/null || { echo "bench: unknown scenario $scenario" >&2; exit 2; }
  echo "$scenario:"
  # A subshell per scenario: its stack's trap stops its servers before the next one starts.
  # Separate commands, not an && list, and errexit set inside rather than an `|| failed` after
  # it, so that errexit holds inside the scenario. A scenario that fails is reported after the
  # table, and the others still run.
  set +e
  ( set -e; stack_init "$build_dir" "bench-$scenario"; "scenario_$scenario" )
  rc=$?
  set -e
  [ "$rc" -eq 0 ] || failed_scenarios+=("$scenario")
done

# Debian's python3-matplotlib lives under /usr/bin/python3, which another python3 on PATH may hide.
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
report=("$python" "$here/bench_report.py" "$runs")
[ "$smoke" -eq 1 ] && report+=(--smoke)
[ -n "$charts" ] && report+=(--charts "$charts")
if [ "${#failed_scenarios[@]}" -gt 0 ]; then
  report+=(--failed "$(IFS=,; echo "${failed_scenarios[*]}")")
fi
report_rc=0
"${report[@]}" || report_rc=$?
if [ "${#failed_scenarios[@]}" -gt 0 ]; then
  echo "bench: scenarios that failed to run: ${failed_scenarios[*]}" >&2
  report_rc=1
fi
[ "$report_rc" -eq 0 ]
