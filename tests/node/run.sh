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

# tools/stack.sh starts the fake and emr, and its trap stops them on every exit path.
# shellcheck source=../../tools/stack.sh
. "$here/../../tools/stack.sh"
stack_init "$build_dir" node

stack_start_fake
# The server reads the provider key from its own environment, so it goes in before it starts.
export NODE_TEST_VOYAGE_KEY="node-test-voyage-key"
stack_start_emr "$STACK_FAST_AUTH"
stack_add_provider voyage voyage NODE_TEST_VOYAGE_KEY "$FAKE_URL/v1/embeddings" voyage-3.5
stack_create_key node

echo "fake provider at $FAKE_URL, emr at $EMR_URL" >&2
node_rc=0
(cd "$here/../.." && EMR_URL="$EMR_URL" EMR_KEY="$KEY" FAKE_URL="$FAKE_URL" \
  node --test tests/node/) || node_rc=$?
exit "$node_rc"
