#!/usr/bin/env bash
# `make soak` (not in CI): three fault-injecting fakes, one each registered as Voyage, Cohere and
# OpenAI, and `emr serve` on loopback; then tools/soak.cpp drives the traffic and prints the report.
# Usage: tools/soak.sh BUILD_DIR [SOAK_ARGS...], e.g. tools/soak.sh build --duration 60
set -euo pipefail

build_dir="${1:?usage: tools/soak.sh BUILD_DIR [SOAK_ARGS...]}"
shift
for tool in fake_provider emr soak; do
  [ -x "$build_dir/$tool" ] || { echo "soak: $build_dir/$tool is missing; run make soak" >&2; exit 1; }
done

# tools/stack.sh starts the servers, and its trap stops them on every exit path.
# shellcheck source=stack.sh
. "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
stack_init "$build_dir" soak

# emr reads the providers' key from its own environment, so it goes in before emr starts.
export SOAK_PROVIDER_KEY="soak-provider-key"
declare -A fakes
for provider in voyage cohere openai; do
  stack_start_named_fake "$provider" --latency-ms 10 --latency-per-token-us 5
  fakes[$provider]="$FAKE_URL"
done

# A 2 s upstream timeout and a 5 s deadline: an injected timeout and its retries reach the
# deadline, so late answers would show.
stack_start_emr '[upstream]
timeout_s = 2' 'deadline_ms = 5000'
echo "emr at $EMR_URL (pid $EMR_PID); fakes: voyage ${fakes[voyage]}," \
  "cohere ${fakes[cohere]}, openai ${fakes[openai]}"

"$STACK_BUILD/soak" --emr "$EMR_URL" --emr-pid "$EMR_PID" --api-key-env SOAK_PROVIDER_KEY \
  --voyage "${fakes[voyage]}" --cohere "${fakes[cohere]}" --openai "${fakes[openai]}" "$@"
