#!/usr/bin/env bash
# Start the Portkey AI gateway (npm @portkey-ai/gateway, pinned in package.json) as a
# benchmark peer on 127.0.0.1:<port>. Prints its PID on stdout; stop it with `kill <pid>`.
#
#   tools/peer/start-portkey.sh <port> <logfile>
#
# Send embeddings to it with, e.g.:
#   -H 'x-portkey-provider: openai' -H 'x-portkey-custom-host: http://127.0.0.1:<fake>/v1'
#   -H 'Authorization: Bearer any' -H 'Content-Type: application/json'
set -euo pipefail

if [[ $# -ne 2 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 <port> <logfile>" >&2
  exit 2
fi
port=$1
log=$2
here=$(cd "$(dirname "$0")" && pwd)
entry=$here/node_modules/@portkey-ai/gateway/build/start-server.js

# The lockfile pins @hono/node-server 1.14.1: newer versions make every proxied
# response fail with "TypeError: immutable" (Portkey-AI/gateway#1389).
if [[ ! -f $entry ]]; then
  (cd "$here" && npm ci --no-audit --no-fund) >&2
fi

# If something already answers here, a successful health poll would prove nothing.
if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null; then
  echo "start-portkey: port $port is already in use" >&2
  exit 1
fi

# Portkey has no host option and listens on all interfaces; this preload makes
# the server bind to loopback only. (No '?' or '#' allowed inside the data: URL.)
loopback='data:text/javascript,import http from "node:http";const l=http.Server.prototype.listen;http.Server.prototype.listen=function(p,h,...r){return l.call(this,p,h||"127.0.0.1",...r)}'

# --port only works in the "--port=N" form (otherwise it silently uses 8787).
# --headless skips the web UI. TRUSTED_CUSTOM_HOSTS would replace the default
# loopback allow-list for x-portkey-custom-host; REDIS_CONNECTION_STRING would
# make it talk to Redis. setsid: keep it alive after this script exits.
env -u TRUSTED_CUSTOM_HOSTS -u REDIS_CONNECTION_STRING \
  setsid node --import "$loopback" "$entry" "--port=$port" --headless \
  >"$log" 2>&1 </dev/null &
pid=$!

# GET / answers "AI Gateway says hey!" once the server is listening.
for _ in $(seq 100); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start-portkey: gateway exited during startup; tail of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  if curl -fsS --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null | grep -q 'AI Gateway'; then
    echo "$pid"
    exit 0
  fi
  sleep 0.2
done

echo "start-portkey: gateway did not answer on 127.0.0.1:$port within 20 s; see $log" >&2
kill "$pid" 2>/dev/null || true
exit 1
