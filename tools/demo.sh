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

# tools/stack.sh starts the fake and emr, and its trap stops them on every exit path.
# shellcheck source=stack.sh
. "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
stack_init "$build_dir" demo
work="$STACK_WORK"

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

upstream_calls() { curl -sf "$FAKE_URL/_stats" | json_field calls; }
reset_fake() { curl -sf -H 'Content-Type: application/json' -d '{}' "$FAKE_URL/_reset" >/dev/null; }

echo "fake Voyage: ${latency_ms} ms per call + ${latency_per_token_us} us per token (about 4 bytes a token)"
stack_start_fake --latency-ms "$latency_ms" --latency-per-token-us "$latency_per_token_us"

# The server reads the provider key from its own environment, so it goes in before it starts.
export DEMO_VOYAGE_KEY="demo-voyage-key"
stack_start_emr
echo "fake provider at $FAKE_URL, emr at $EMR_URL"

stack_add_provider voyage voyage DEMO_VOYAGE_KEY "$FAKE_URL/v1/embeddings" voyage-3.5 128
stack_create_key demo
echo "registered provider voyage (voyage-3.5, up to 128 texts a call) and caller key \"demo\""

# Runs one burst of $callers single-text callers; the JSON summary lands in $work/$1.json.
burst() {
  local name="$1"
  shift
  reset_fake
  local rc=0
  "$STACK_BUILD/loadgen" --mode burst --callers "$callers" --texts-per-call 1 \
    --text-prefix "demo text" --verify-model voyage-3.5 --json "$@" >"$work/$name.json" || rc=$?
  upstream_calls >"$work/$name.calls"
  return "$rc"
}

echo "sending $callers concurrent callers, one text each, straight at the fake ..."
direct_rc=0
burst direct --url "$FAKE_URL" --key "$DEMO_VOYAGE_KEY" --model voyage-3.5 || direct_rc=$?
echo "sending the same $callers callers through emr ..."
emr_rc=0
burst emr --url "$EMR_URL" --key "$KEY" --provider voyage || emr_rc=$?

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
