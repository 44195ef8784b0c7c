#!/usr/bin/env bash
# Runs every example of docs/api.md against a real `emr serve` and the fake provider, and checks
# that each answers with the HTTP status its `# expect: N` line promises.
#
# Usage: tests/docs/run_api_examples.sh BUILD_DIR
#
# An example is a `# expect: N` line followed at once by a `curl ...` command, which may continue
# over lines ending in `\`. Each runs with `-o BODY -w '%{http_code}'` appended, in the order of
# the document, against one server set up as docs/api.md describes:
#   $EMR               the server's base URL
#   $EMR_ADMIN_SECRET  the admin secret
#   $KEY, $KEY_ID      a caller key and its id
#   provider `voyage`  (type voyage, model voyage-3.5, api_key_env VOYAGE_API_KEY) on the fake
# Exits 1 if any example's status differs, after printing its command, status and body.

set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOC="${EMR_API_DOC:-$ROOT/docs/api.md}"  # override only to test this script
for f in "$BUILD/emr" "$BUILD/fake_provider" "$DOC"; do
  [[ -e $f ]] || { echo "missing $f" >&2; exit 2; }
done
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done

# tools/stack.sh starts the fake and emr, and its trap stops them on every exit path.
# shellcheck source=../../tools/stack.sh
. "$ROOT/tools/stack.sh"
stack_init "$BUILD" api-docs
WORK=$STACK_WORK

# The fake provider: Voyage's wire format at /v1/embeddings, any non-empty key accepted.
stack_start_fake
# The server reads the provider key from its own environment, so it goes in before it starts.
export VOYAGE_API_KEY="fake-voyage-key"
stack_start_emr "$STACK_FAST_AUTH"
export EMR=$EMR_URL
stack_add_provider voyage voyage VOYAGE_API_KEY "$FAKE_URL/v1/embeddings" voyage-3.5
stack_create_key docs-examples
export KEY KEY_ID

# Collect the examples: `# expect: N` then a curl command (with `\` continuations).
examples=()
expects=()
lines=()
while IFS= read -r line || [[ -n $line ]]; do
  lines+=("$line")
done <"$DOC"
for ((i = 0; i < ${#lines[@]}; i++)); do
  if [[ ${lines[i]} =~ ^#\ expect:\ ([0-9]{3})[[:space:]]*$ ]]; then
    status=${BASH_REMATCH[1]}
    j=$((i + 1))
    if [[ ${lines[j]:-} != curl* ]]; then
      echo "docs/api.md:$((i + 1)): '# expect' is not followed by a curl command" >&2
      exit 1
    fi
    cmd=${lines[j]}
    while [[ $cmd == *\\ ]] && ((j + 1 < ${#lines[@]})); do
      j=$((j + 1))
      cmd+=$'\n'"${lines[j]}"
    done
    examples+=("$cmd")
    expects+=("$status")
    i=$j
  fi
done
if ((${#examples[@]} == 0)); then
  echo "no examples found in $DOC" >&2
  exit 1
fi

passed=0
failed=0
cd "$WORK"
for ((n = 0; n < ${#examples[@]}; n++)); do
  cmd=${examples[n]}
  want=${expects[n]}
  rm -f "$WORK/body"
  got=$(eval "$cmd -o \"\$WORK/body\" -w '%{http_code}'" 2>"$WORK/stderr") || true
  if [[ $got != "$want" ]]; then
    failed=$((failed + 1))
    echo "FAILED example $((n + 1)) of ${#examples[@]}: expected $want, got ${got:-nothing}" >&2
    echo "--- command" >&2
    echo "$cmd" >&2
    echo "--- body" >&2
    head -c 2000 "$WORK/body" >&2 2>/dev/null || true
    echo >&2
    if [[ -s $WORK/stderr ]]; then
      echo "--- stderr" >&2
      cat "$WORK/stderr" >&2
    fi
    continue
  fi
  passed=$((passed + 1))
done
echo "$passed passed, $failed failed"
((failed == 0)) || exit 1
