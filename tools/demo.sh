#!/usr/bin/env bash
# `make demo`: 1,000 concurrent single-text callers, straight at a fake Voyage and through emr,
# on both of the fake's provider models (tools/stack.sh): the realistic one, whose provider serves
# a key only so many calls at once, and the unlimited one, which serves every call at once. Every
# vector is verified; prints upstream calls and latency for each path and model.
# Usage: tools/demo.sh BUILD_DIR
set -euo pipefail

build_dir="${1:?usage: tools/demo.sh BUILD_DIR}"
callers=1000

for tool in fake_provider emr loadgen; do
  [ -x "$build_dir/$tool" ] || { echo "demo: $build_dir/$tool is missing; run make build" >&2; exit 1; }
done
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is required" >&2; exit 1; }
done

# tools/stack.sh starts the fakes and emr, and its trap stops them on every exit path.
# shellcheck source=stack.sh
. "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
stack_init "$build_dir" demo
work="$STACK_WORK"

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# One fake per model; both are registered in one emr.
declare -A fake_url
echo "fake Voyage, realistic model: ${STACK_REALISTIC_PROVIDER[*]}"
stack_start_named_fake realistic "${STACK_REALISTIC_PROVIDER[@]}"
fake_url[realistic]="$FAKE_URL"
echo "fake Voyage, unlimited model: ${STACK_UNLIMITED_PROVIDER[*]}"
stack_start_named_fake unlimited "${STACK_UNLIMITED_PROVIDER[@]}"
fake_url[unlimited]="$FAKE_URL"

# The server reads the provider key from its own environment, so it goes in before it starts.
export DEMO_VOYAGE_KEY="demo-voyage-key"
stack_start_emr
echo "emr at $EMR_URL"

for model in realistic unlimited; do
  stack_add_provider "$model" voyage DEMO_VOYAGE_KEY "${fake_url[$model]}/v1/embeddings" voyage-3.5 128
done
stack_create_key demo
echo "registered providers realistic and unlimited (voyage-3.5, up to 128 texts a call) and caller key \"demo\""

# Runs one burst of $callers single-text callers against the fake at FAKE; the JSON summary lands
# in $work/NAME.json and the fake's call count in $work/NAME.calls.
#   burst NAME FAKE LOADGEN_ARGS...
burst() {
  local name="$1" fake="$2"
  shift 2
  curl -sf -H 'Content-Type: application/json' -d '{}' "$fake/_reset" >/dev/null
  local rc=0
  "$STACK_BUILD/loadgen" --mode burst --callers "$callers" --texts-per-call 1 \
    --text-prefix "demo $name" --verify-model voyage-3.5 --json "$@" >"$work/$name.json" || rc=$?
  curl -sf "$fake/_stats" | json_field calls >"$work/$name.calls"
  return "$rc"
}

failed=0
for model in realistic unlimited; do
  echo "$model model: $callers concurrent callers, one text each, straight at the fake, then through emr ..."
  burst "$model-direct" "${fake_url[$model]}" --url "${fake_url[$model]}" --key "$DEMO_VOYAGE_KEY" --model voyage-3.5 || failed=1
  burst "$model-emr" "${fake_url[$model]}" --url "$EMR_URL" --key "$KEY" --provider "$model" || failed=1
done

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
models = [("realistic", "where emr should win on latency as well as calls"),
          ("unlimited", "where emr should cost almost nothing")]
header = ("", "requests", "ok (verified)", "upstream calls", "compression", "p50 ms", "p99 ms")
for model, meaning in models:
    table = [header]
    runs = {}
    for label, path in (("direct", "direct"), ("through emr", "emr")):
        s = json.load(open(f"{work}/{model}-{path}.json"))
        calls = int(open(f"{work}/{model}-{path}.calls").read())
        runs[path] = s
        compression = f"{s['total'] / calls:.1f}x" if calls else "-"
        table.append((label, str(s["total"]), str(s["ok"]), str(calls), compression,
                      f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}"))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(f"\n{model} model: {meaning}")
    for r in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
    direct, via = runs["direct"]["p50_ms"], runs["emr"]["p50_ms"]
    if direct > 0:
        print(f"emr p50 / direct p50 = {via / direct:.2f} ({via:.1f} ms vs {direct:.1f} ms)")
    for path, s in runs.items():
        if s["ok"] != s["total"]:
            print(f"{path}: {s['total'] - s['ok']} of {s['total']} calls failed "
                  f"(status counts {s['status_counts']}, wrong vectors {s['wrong_vectors']})")
            for e in s["errors"]:
                print(f"  {e}")
PY

if [ "$failed" -ne 0 ]; then
  echo "demo: some calls failed or returned wrong vectors" >&2
  exit 1
fi
echo
echo "every vector verified against the fake's deterministic embeddings"
