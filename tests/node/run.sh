#!/usr/bin/env bash
# Runs the Node SDK tests (tests/node/*.test.mjs) against a real `emr serve` in front of the fake
# Voyage provider: starts both on free loopback ports with a throwaway config and database,
# registers provider `voyage` (voyage-3.5) and a caller key, runs `node --test`, and stops both.
# Usage: tests/node/run.sh BUILD_DIR        (exits with node's status)
set -euo pipefail

build_dir="${1:?usage: tests/node/run.sh BUILD_DIR}"
build_dir="$(cd "$build_dir" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

for tool in fake_provider emr; do
  [ -x "$build_dir/$tool" ] || { echo "run.sh: $build_dir/$tool is missing; run make build" >&2; exit 1; }
done
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required (Node 20 or newer)" >&2; exit 1; }
done

if [ ! -d "$here/node_modules" ]; then
  echo "run.sh: installing the pinned dependencies (npm ci) ..." >&2
  (cd "$here" && npm ci --no-audit --no-fund)
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/emr-node.XXXXXX")"
pids=()

# Stops what this script started, on every exit path; a failed run shows the servers' last words.
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
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name exited during startup" >&2; return 1; }
    sleep 0.1
  done
  echo "run.sh: $name did not start within 10 s" >&2
  return 1
}

"$build_dir/fake_provider" --port 0 --port-file "$work/fake.port" >"$work/fake.log" 2>&1 &
pids+=($!)
fake_url="http://127.0.0.1:$(wait_for_port "$work/fake.port" "${pids[-1]}" fake_provider)"

cat >"$work/emr.toml" <<EOF
[server]
bind = "127.0.0.1:0"

[storage]
path = "$work/emr.db"

[auth]
argon2_t_cost = 1
argon2_m_cost_kib = 64
EOF
# The server reads the provider key from its own environment, so both go in before it starts.
EMR_ADMIN_SECRET="node-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
NODE_TEST_VOYAGE_KEY="node-test-voyage-key"
export EMR_ADMIN_SECRET NODE_TEST_VOYAGE_KEY
"$build_dir/emr" serve --config "$work/emr.toml" --port-file "$work/emr.port" >"$work/emr.log" 2>&1 &
pids+=($!)
emr_url="http://127.0.0.1:$(wait_for_port "$work/emr.port" "${pids[-1]}" "emr serve")"

"$build_dir/emr" providers add --server "$emr_url" --name voyage --type voyage \
  --api-key-env NODE_TEST_VOYAGE_KEY --endpoint "$fake_url/v1/embeddings" --model voyage-3.5 \
  >"$work/providers.out" 2>&1 || { cat "$work/providers.out" >&2; exit 1; }
caller_key="$("$build_dir/emr" keys create --server "$emr_url" --name node 2>"$work/keys.err")" \
  || { cat "$work/keys.err" >&2; exit 1; }
[ -n "$caller_key" ] || { echo "run.sh: emr keys create printed no key" >&2; exit 1; }

echo "fake provider at $fake_url, emr at $emr_url" >&2
node_rc=0
(cd "$here/../.." && EMR_URL="$emr_url" EMR_KEY="$caller_key" FAKE_URL="$fake_url" \
  node --test tests/node/) || node_rc=$?
exit "$node_rc"
