# shellcheck shell=bash
# shellcheck disable=SC2034  # the FAKE_*, EMR_*, KEY* and STACK_* variables are for the caller
# Sourced, not run: starts the fake provider and a real `emr serve` in front of it on free loopback
# ports, with a throwaway config and database, for the scripts that need the whole stack
# (tools/demo.sh, tests/node/run.sh, tests/docs/run_api_examples.sh).
#
#   stack_init BUILD_DIR LABEL     STACK_BUILD (absolute), STACK_WORK (a temporary directory,
#                                  removed on exit) and the cleanup trap; LABEL names the
#                                  directory and prefixes error messages
#   stack_start_fake [ARGS...]     fake_provider with ARGS; sets FAKE_PORT, FAKE_URL, FAKE_PID
#   stack_start_named_fake NAME [ARGS...]
#                                  the same, with its port and log files named NAME, for a stack
#                                  of several fakes
#   stack_start_emr [EXTRA_TOML [SERVER_TOML]]
#                                  emr serve, EXTRA_TOML appended to its config and SERVER_TOML
#                                  to its [server] table; sets EMR_PORT, EMR_URL, EMR_PID and
#                                  exports a fresh EMR_ADMIN_SECRET
#   stack_start_fleet N [EXTRA_TOML]
#                                  a throwaway PostgreSQL cluster (tests/postgres/cluster.sh), N
#                                  emr serve replicas sharing it, and HAProxy in front of them
#                                  (the configuration docs/deployment.md gives); sets EMR_URL to
#                                  the balancer, EMR_PID to the first replica and EMR_PIDS to all
#   stack_add_provider NAME TYPE KEY_ENV ENDPOINT MODEL [MAX_BATCH [RPM [TPM]]]
#                                  RPM and TPM: the provider's limits as the operator sets them
#                                  (`emr providers add --rpm --tpm`); empty or absent: none set
#   stack_create_key NAME          sets KEY and KEY_ID
#
# Every function returns non-zero after saying why on stderr, so under `set -e` a failed step ends
# the script, and the trap then stops the servers and shows their last log lines.

# The fake provider's two models of a hosted embeddings API, as fake_provider flags, for make demo
# and the bench (docs/performance.md, "Provider models", says where the numbers come from):
#   unlimited  20 ms a call + 10 us a token, every call served at once, no rate limit. Batching
#              can only add latency here: it shows what emr costs.
#   realistic  40 ms a call + 10 us a token; 50 calls served at once per API key while the rest
#              wait their turn at the provider; Voyage's tier-2 limits for voyage-3.5 (4,000
#              requests and 16M tokens a minute), which a 1,000-caller burst does not reach.
#              1,000 concurrent single-text callers straight at it see a p50 near the seed's
#              430 ms. Enough threads that every connection reaches the provider's own queue.
STACK_UNLIMITED_PROVIDER=(--latency-ms 20 --latency-per-token-us 10)
STACK_REALISTIC_PROVIDER=(--latency-ms 40 --latency-per-token-us 10 --concurrency 50
                          --rpm 4000 --tpm 16000000 --threads 1100)

# EXTRA_TOML for tests: the cheapest argon2id settings, so hashing caller keys costs next to nothing.
STACK_FAST_AUTH='[auth]
argon2_t_cost = 1
argon2_m_cost_kib = 64'

# Stops what the stack started, on every exit path; a failed run shows the servers' last words.
stack_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${STACK_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STACK_PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    local log
    for log in "$STACK_WORK"/*.log; do
      if [ -s "$log" ]; then
        echo "--- last lines of ${log##*/} ---" >&2
        tail -n 20 "$log" >&2
      fi
    done
  fi
  if [ -n "${STACK_POSTGRES:-}" ]; then
    "$STACK_ROOT/tests/postgres/cluster.sh" stop "$STACK_POSTGRES" || true
  fi
  rm -rf "$STACK_WORK"
  exit "$rc"
}

stack_init() {
  local build="${1:?usage: stack_init BUILD_DIR LABEL}"
  STACK_LABEL="${2:?usage: stack_init BUILD_DIR LABEL}"
  STACK_BUILD="$(cd "$build" && pwd)" || return 1
  STACK_WORK="$(mktemp -d "${TMPDIR:-/tmp}/emr-$STACK_LABEL.XXXXXX")" || return 1
  STACK_PIDS=()
  STACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  STACK_POSTGRES=""
  trap stack_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Prints the port a server wrote to its port file, or fails if the server died or took too long.
stack_wait_for_port() {
  local file="$1" pid="$2" name="$3"
  for _ in $(seq 100); do
    if [ -s "$file" ]; then
      cat "$file"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "$STACK_LABEL: $name exited during startup" >&2; return 1; }
    sleep 0.1
  done
  echo "$STACK_LABEL: $name did not start within 10 s" >&2
  return 1
}

# shellcheck disable=SC2120  # ARGS are optional
stack_start_fake() {
  stack_start_named_fake fake "$@"
}

stack_start_named_fake() {
  local name="$1"
  shift
  "$STACK_BUILD/fake_provider" --port 0 --port-file "$STACK_WORK/$name.port" "$@" \
    >"$STACK_WORK/$name.log" 2>&1 &
  local pid=$!
  STACK_PIDS+=("$pid")
  FAKE_PID="$pid"
  FAKE_PORT="$(stack_wait_for_port "$STACK_WORK/$name.port" "$pid" "fake_provider $name")" || return 1
  FAKE_URL="http://127.0.0.1:$FAKE_PORT"
}

# The server reads the admin secret and the providers' API keys from its own environment, so the
# caller exports each provider's KEY_ENV before this, and the secret is exported here.
# shellcheck disable=SC2120  # EXTRA_TOML is optional
stack_start_emr() {
  local extra_toml="${1:-}" server_toml="${2:-}"
  cat >"$STACK_WORK/emr.toml" <<EOF
[server]
bind = "127.0.0.1:0"
$server_toml

[storage]
path = "$STACK_WORK/emr.db"
EOF
  if [ -n "$extra_toml" ]; then
    printf '\n%s\n' "$extra_toml" >>"$STACK_WORK/emr.toml"
  fi
  EMR_ADMIN_SECRET="$STACK_LABEL-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export EMR_ADMIN_SECRET
  "$STACK_BUILD/emr" serve --config "$STACK_WORK/emr.toml" --port-file "$STACK_WORK/emr.port" \
    >"$STACK_WORK/emr.log" 2>&1 &
  local pid=$!
  STACK_PIDS+=("$pid")
  EMR_PID="$pid"
  EMR_PORT="$(stack_wait_for_port "$STACK_WORK/emr.port" "$pid" "emr serve")" || return 1
  EMR_URL="http://127.0.0.1:$EMR_PORT"
}

stack_start_fleet() {
  local replicas="$1" extra_toml="${2:-}" ports=() i port
  STACK_POSTGRES="$STACK_WORK/postgres.state"
  "$STACK_ROOT/tests/postgres/cluster.sh" start "$STACK_POSTGRES" || return 1
  EMR_DATABASE_URL="$(sed -n 1p "$STACK_POSTGRES")"
  EMR_ADMIN_SECRET="$STACK_LABEL-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export EMR_DATABASE_URL EMR_ADMIN_SECRET
  EMR_PIDS=()
  for i in $(seq "$replicas"); do
    printf '[server]\nbind = "127.0.0.1:0"\n\n%s\n' "$extra_toml" >"$STACK_WORK/emr$i.toml"
    "$STACK_BUILD/emr" serve --config "$STACK_WORK/emr$i.toml" --port-file "$STACK_WORK/emr$i.port" \
      >"$STACK_WORK/emr$i.log" 2>&1 &
    STACK_PIDS+=("$!")
    EMR_PIDS+=("$!")
    port="$(stack_wait_for_port "$STACK_WORK/emr$i.port" "$!" "emr serve replica $i")" || return 1
    ports+=("$port")
  done
  EMR_PID="${EMR_PIDS[0]}"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  {
    printf 'global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n'
    printf '  timeout client 90s\n  timeout server 90s\n'
    printf 'frontend emr\n  bind 127.0.0.1:%s\n  default_backend replicas\n' "$port"
    printf 'backend replicas\n  balance roundrobin\n  option httpchk GET /health\n'
    for i in "${!ports[@]}"; do
      printf '  server replica%s 127.0.0.1:%s check inter 500ms\n' "$((i + 1))" "${ports[$i]}"
    done
  } >"$STACK_WORK/haproxy.cfg"
  /usr/sbin/haproxy -db -f "$STACK_WORK/haproxy.cfg" >"$STACK_WORK/haproxy.log" 2>&1 &
  STACK_PIDS+=("$!")
  EMR_URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -sf "$EMR_URL/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$STACK_LABEL: HAProxy did not come up within 10 s" >&2
  return 1
}

stack_add_provider() {
  local name="$1" type="$2" key_env="$3" endpoint="$4" model="$5" max_batch="${6:-}"
  local rpm="${7:-}" tpm="${8:-}"
  "$STACK_BUILD/emr" providers add --server "$EMR_URL" --name "$name" --type "$type" \
    --api-key-env "$key_env" --endpoint "$endpoint" --model "$model" \
    ${max_batch:+--max-batch "$max_batch"} ${rpm:+--rpm "$rpm"} ${tpm:+--tpm "$tpm"} \
    >"$STACK_WORK/providers.out" 2>&1 \
    || { cat "$STACK_WORK/providers.out" >&2; return 1; }
}

stack_create_key() {
  local name="$1" created
  created="$("$STACK_BUILD/emr" keys create --json --server "$EMR_URL" --name "$name" \
    2>"$STACK_WORK/keys.err")" || { cat "$STACK_WORK/keys.err" >&2; return 1; }
  # The CLI prints boost::json's compact form, e.g. {"id":1,...,"key":"emr_..."}.
  if [[ $created =~ \"id\":([0-9]+) ]]; then KEY_ID="${BASH_REMATCH[1]}"; else KEY_ID=""; fi
  if [[ $created =~ \"key\":\"(emr_[^\"]*)\" ]]; then KEY="${BASH_REMATCH[1]}"; else KEY=""; fi
  if [ -z "$KEY" ] || [ -z "$KEY_ID" ]; then
    echo "$STACK_LABEL: emr keys create gave no key: $created" >&2
    return 1
  fi
}
