#!/usr/bin/env bash
# `make demo`: 1,000 concurrent single-text callers, once straight at a fake Voyage and once
# through emr, every vector verified; prints how many upstream calls each way took.
# Usage: tools/demo.sh BUILD_DIR
set -euo pipefail

build_dir="${1:?usage: tools/demo.sh BUILD_DIR}"
callers=1000
latency_ms=20
latency_per_token_us=10

for tool in fake_provider emr loadgen; do
  [ -x "$build_dir/$tool" ] || { echo "demo: $build_dir/$tool is missing; run make build" >&2; exit 1; }
done
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is required" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/emr-demo.XXXXXX")"
pids=()

# Stops what the demo started, on every exit path; a failed run shows the servers' last words.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    for log in fake.log emr.log; do
      if [ -s "$work/$log" ]; then
        echo "--- last lines of $log ---" >&2
        tail -n 20 "$work/$log" >&2
      fi
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the port a server wrote to its port file, or fails if the server died or took too long.
wait_for_port() {
  local file="$1" pid="$2" name="$3"
  for _ in $(seq 100); do
    if [ -s "$file" ]; then
      cat "$file"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "demo: $name exited during startup" >&2; return 1; }
    sleep 0.1
  done
  echo "demo: $name did not start within 10 s" >&2
  return 1
}

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

upstream_calls() { curl -sf "$fake_url/_stats" | json_field calls; }
reset_fake() { curl -sf -H 'Content-Type: application/json' -d '{}' "$fake_url/_reset" >/dev/null; }

echo "fake Voyage: ${latency_ms} ms per call + ${latency_per_token_us} us per token (about 4 bytes a token)"
"$build_dir/fake_provider" --port 0 --port-file "$work/fake.port" --latency-ms "$latency_ms" \
  --latency-per-token-us "$latency_per_token_us" >"$work/fake.log" 2>&1 &
pids+=($!)
fake_url="http://127.0.0.1:$(wait_for_port "$work/fake.port" "${pids[-1]}" fake_provider)"

cat >"$work/emr.toml" <<EOF
[server]
bind = "127.0.0.1:0"

[storage]
path = "$work/emr.db"
EOF
# The server reads the provider key from its own environment, so both go in before it starts.
EMR_ADMIN_SECRET="demo-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
DEMO_VOYAGE_KEY="demo-voyage-key"
export EMR_ADMIN_SECRET DEMO_VOYAGE_KEY
"$build_dir/emr" serve --config "$work/emr.toml" --port-file "$work/emr.port" >"$work/emr.log" 2>&1 &
pids+=($!)
emr_url="http://127.0.0.1:$(wait_for_port "$work/emr.port" "${pids[-1]}" "emr serve")"
echo "fake provider at $fake_url, emr at $emr_url"

"$build_dir/emr" providers add --server "$emr_url" --name voyage --type voyage \
  --api-key-env DEMO_VOYAGE_KEY --endpoint "$fake_url/v1/embeddings" --model voyage-3.5 \
  --max-batch 128 >/dev/null
caller_key="$("$build_dir/emr" keys create --server "$emr_url" --name demo 2>"$work/keys.err")" \
  || { cat "$work/keys.err" >&2; exit 1; }
echo "registered provider voyage (voyage-3.5, up to 128 texts a call) and caller key \"demo\""

# Runs one burst of $callers single-text callers; the JSON summary lands in $work/$1.json.
burst() {
  local name="$1"
  shift
  reset_fake
  local rc=0
  "$build_dir/loadgen" --mode burst --callers "$callers" --texts-per-call 1 \
    --text-prefix "demo text" --verify-model voyage-3.5 --json "$@" >"$work/$name.json" || rc=$?
  upstream_calls >"$work/$name.calls"
  return "$rc"
}

echo "sending $callers concurrent callers, one text each, straight at the fake ..."
direct_rc=0
burst direct --url "$fake_url" --key "$DEMO_VOYAGE_KEY" --model voyage-3.5 || direct_rc=$?
echo "sending the same $callers callers through emr ..."
emr_rc=0
burst emr --url "$emr_url" --key "$caller_key" --provider voyage || emr_rc=$?

python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
rows = [("direct", "direct"), ("through emr", "emr")]
header = ("", "requests", "ok (verified)", "upstream calls", "compression", "p50 ms", "p99 ms")
table = [header]
failures = []
for label, name in rows:
    s = json.load(open(f"{work}/{name}.json"))
    calls = int(open(f"{work}/{name}.calls").read())
    compression = f"{s['total'] / calls:.1f}x" if calls else "-"
    table.append((label, str(s["total"]), str(s["ok"]), str(calls), compression,
                  f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}"))
    if s["ok"] != s["total"]:
        failures.append((label, s))
widths = [max(len(r[i]) for r in table) for i in range(len(header))]
print()
for r in table:
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
for label, s in failures:
    print(f"\n{label}: {s['total'] - s['ok']} of {s['total']} calls failed "
          f"(status counts {s['status_counts']}, wrong vectors {s['wrong_vectors']})")
    for e in s["errors"]:
        print(f"  {e}")
EOF

if [ "$direct_rc" -ne 0 ] || [ "$emr_rc" -ne 0 ]; then
  echo "demo: some calls failed or returned wrong vectors" >&2
  exit 1
fi
echo
echo "every vector verified against the fake's deterministic embeddings"
